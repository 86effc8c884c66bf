"""The application factory: the one place that knows every package and blueprint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, redirect, request, url_for
from flask_login import current_user
from flask_migrate import Migrate

from accounts.auth import csrf, login_manager
from config import i18n
from config.settings import ensure_secrets, load_settings
from core import dialects, ids, templating
from core.db import configure_engine, db
from core.limits import limiter

# A checkout keeps the templates, static files, catalogues and migrations beside the
# packages; an installed wheel keeps them in integrity_pos/ (put there by setup.py).
_PACKAGES = Path(__file__).resolve().parent.parent
ROOT = _PACKAGES / "integrity_pos" if (_PACKAGES / "integrity_pos").is_dir() else _PACKAGES
migrate = Migrate()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    settings = load_settings()
    settings.update(test_config or {})
    # Before anything binds to it: another database would fail later, mid-request.
    dialects.check_url(settings["SQLALCHEMY_DATABASE_URI"])
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(settings["HOME"]),
    )
    app.config.update(settings)
    # Chinese names stay readable in JSON instead of \uXXXX escapes.
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.config.setdefault("TRANSLATIONS_DIR", ROOT / "translations")
    # CSRF is checked in before_request below: every page form always, API calls only
    # when they ride on a browser session (see accounts.auth.api_actor).
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    if not app.config.get("SECRET_KEY"):
        app.config.update(ensure_secrets(Path(app.config["HOME"])))

    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    i18n.init_app(app)
    templating.init_app(app)
    # Before the blueprints: their routes name the `id` converter.
    ids.init_app(app)
    _register_blueprints(app)
    _register_request_hooks(app)
    return app


def _register_blueprints(app: Flask) -> None:
    # Importing models here puts every table on the metadata before anything uses it.
    import county.models  # noqa: F401
    import declarations.models  # noqa: F401
    import inventory.models  # noqa: F401
    import ledger.models  # noqa: F401
    import member_cards.models  # noqa: F401
    import pos.models  # noqa: F401
    from accounts.views import api_blp as auth_api
    from accounts.views import bp as auth_pages
    from audit.views import bp as audit_pages
    from core import errors
    from core.api import api
    from county.api import blp as county_api
    from county.views import bp as county_pages
    from declarations.api import blp as declarations_api
    from declarations.views import bp as declaration_pages
    from inventory.api import blp as inventory_api
    from inventory.views import bp as inventory_pages
    from ledger.api import blp as ledger_api
    from ledger.views import bp as ledger_pages
    from member_cards.api import blp as cards_api
    from member_cards.views import bp as cards_pages
    from nodes import extension as nodes
    from nodes import models as nodes_models  # noqa: F401
    from nodes.api import blp as nodes_api
    from pos.api import blp as pos_api
    from pos.views import bp as pos_pages
    from printing import extension as printing
    from printing import models as printing_models  # noqa: F401
    from printing.api import blp as printing_api
    from printing.views import bp as printer_pages

    api.init_app(app)
    app.register_blueprint(errors.bp)
    api.register_blueprint(county_api)
    app.register_blueprint(county_pages)
    for blueprint in (auth_api, ledger_api, cards_api, inventory_api, pos_api):
        api.register_blueprint(blueprint)
    api.register_blueprint(printing_api)
    api.register_blueprint(declarations_api)
    api.register_blueprint(nodes_api)
    nodes.init_app(app)
    for blueprint in (auth_pages, ledger_pages, cards_pages, inventory_pages, pos_pages):
        app.register_blueprint(blueprint)
    app.register_blueprint(printer_pages)
    app.register_blueprint(audit_pages)
    app.register_blueprint(declaration_pages)
    printing.init_app(app)

    @app.route("/")
    def home() -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login"))
        # Each role starts where its day's work is.
        if current_user.role in ("manager", "clerk"):
            return redirect(url_for("pos.counter"))
        if current_user.role == "reporter":
            return redirect(url_for("declarations.new"))
        return redirect(url_for("ledger.households"))


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _protect_forms() -> None:
        if request.method not in ("GET", "HEAD", "OPTIONS") and not request.path.startswith(
            "/api/"
        ):
            csrf.protect()

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # Our own files only, and no inline script at all: a name that slipped past
        # escaping still could not run. Every page's script lives in static/.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        )
        return response
