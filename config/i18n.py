"""Language: Simplified Chinese unless the person chose English (or an API client asks)."""

from __future__ import annotations

from flask import current_app, has_request_context, request, session
from flask_babel import Babel, get_locale

babel = Babel()


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        # The CLI and services run outside requests; their messages use the default.
        return current_app.config.get("BABEL_DEFAULT_LOCALE", languages[0])
    if request.path.startswith("/api/"):
        return request.accept_languages.best_match(languages) or languages[0]
    chosen = request.args.get("lang")
    if chosen in languages:
        session["lang"] = chosen
    return session.get("lang") if session.get("lang") in languages else languages[0]


def init_app(app) -> None:  # type: ignore[no-untyped-def]
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(app.config["TRANSLATIONS_DIR"]))
    babel.init_app(
        app, locale_selector=select_locale, timezone_selector=lambda: app.config["TIMEZONE"]
    )
    app.jinja_env.globals["get_locale"] = get_locale
