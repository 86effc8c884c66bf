"""Build hook: a wheel carries the templates, static files, migrations and compiled catalogues.

Everything else about the package is declared in pyproject.toml. The compiled catalogues
(.mo) are not in git, so without this an installed package would speak English.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# The app's files that are not Python packages. In a wheel they go in one directory named
# after the distribution, not loose in site-packages where "templates" or "migrations" of
# another project could collide; config/app.py looks there first.
DATA_ROOT = "integrity_pos"
DATA_DIRS = ("templates", "static", "migrations")
TRANSLATIONS = "translations"
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.py[co]", "*.mo", "*.po", "*.pot", ".*")


def compile_catalogues(source: Path, target: Path) -> list[Path]:
    """Compile source/<locale>/LC_MESSAGES/messages.po to the same place under target.

    As `pybabel compile` does (fuzzy entries left out), but a catalogue with errors, such as
    a translation whose placeholders differ from its msgid, stops the build instead of
    shipping a page that fails when it formats the message.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po_path in sorted(source.glob("*/LC_MESSAGES/messages.po")):
        locale = po_path.parent.parent.name
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale)
        # Fuzzy entries are guesses left by `pybabel update`; they never reach the .mo.
        errors = [
            f"{po_path}:{message.lineno}: {error}"
            for message, found in catalog.check()
            if not message.fuzzy
            for error in found
        ]
        if errors:
            raise SystemExit("catalogue errors:\n" + "\n".join(errors))
        mo_path = target / po_path.relative_to(source).with_suffix(".mo")
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with mo_path.open("wb") as fh:
            write_mo(fh, catalog, use_fuzzy=False)
        written.append(mo_path)
    if not written:
        raise SystemExit(f"no catalogues found under {source}")
    return written


class BuildPyWithAppData(build_py):
    """build_py, then the app's data and compiled catalogues into the build directory."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            # An editable install runs from the checkout: its catalogues compile in place,
            # as `make translations` does.
            compile_catalogues(HERE / TRANSLATIONS, HERE / TRANSLATIONS)
            return
        target = Path(self.build_lib) / DATA_ROOT
        # A reused build directory may hold files since deleted from the checkout.
        shutil.rmtree(target, ignore_errors=True)
        for name in DATA_DIRS:
            shutil.copytree(HERE / name, target / name, ignore=_SKIPPED)
        compile_catalogues(HERE / TRANSLATIONS, target / TRANSLATIONS)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:  # type: ignore[override]
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        target = Path(self.build_lib) / DATA_ROOT
        return outputs + [str(p) for p in sorted(target.rglob("*")) if p.is_file()]


setup(cmdclass={"build_py": BuildPyWithAppData})
