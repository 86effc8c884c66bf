"""Real-browser tests: headless Chromium through Playwright against a live waitress server."""
