"""The dashboard at /dashboard: HTML pages over the same cache as the JSON API, charts drawn
on the server as SVG, plain JavaScript only for the retrain progress bar and the rating form."""

from web.dashboard.views import bp

__all__ = ["bp"]
