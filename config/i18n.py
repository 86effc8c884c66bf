"""Language: Simplified Chinese unless the person chose English (or an API client asks)."""

from __future__ import annotations

from pathlib import Path

from babel import Locale
from flask import current_app, has_request_context, request, session
from flask_babel import Babel, get_locale

babel = Babel()


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        # The CLI and services run outside requests; their messages use the default.
        return current_app.config.get("BABEL_DEFAULT_LOCALE", languages[0])
    # An API client speaks Accept-Language; the counter page's own calls (the browser's
    # session, no token) speak the language of its pages, whatever the PC's browser is set to.
    if request.path.startswith("/api/") and not _browser_session():
        return request.accept_languages.best_match(languages) or languages[0]
    chosen = request.args.get("lang")
    if chosen in languages:
        session["lang"] = chosen
    return session.get("lang") if session.get("lang") in languages else languages[0]


def _browser_session() -> bool:
    # Flask-Login keeps the signed-in user's id in the session cookie.
    return "Authorization" not in request.headers and "_user_id" in session


def init_app(app) -> None:  # type: ignore[no-untyped-def]
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(app.config["TRANSLATIONS_DIR"]))
    babel.init_app(
        app, locale_selector=select_locale, timezone_selector=lambda: app.config["TIMEZONE"]
    )
    app.jinja_env.globals["get_locale"] = get_locale
    _warn_without_catalogues(app)


def _warn_without_catalogues(app) -> None:  # type: ignore[no-untyped-def]
    # Flask-Babel falls back to the English msgids without a word when a compiled catalogue
    # (.mo) is missing, as in a checkout before `make translations`: say so at start.
    found = set()
    for directory in app.config["BABEL_TRANSLATION_DIRECTORIES"].split(";"):
        for mo in (Path(app.root_path) / directory).glob("*/LC_MESSAGES/messages.mo"):
            found.add(mo.parent.parent.name)
    missing = [
        lang
        for lang in app.config["LANGUAGES"]
        if lang != "en" and not {lang, str(Locale.parse(lang))} & found
    ]
    if missing:
        app.logger.warning(
            "no compiled catalogue for %s in %s: pages and receipts will be in English "
            "(run `make translations`; an installed wheel carries them)",
            ", ".join(missing),
            app.config["BABEL_TRANSLATION_DIRECTORIES"],
        )
