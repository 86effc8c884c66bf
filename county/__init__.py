"""The county office's view: rule categories, stars, red and black lists, dashboard, exports."""
