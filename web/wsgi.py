"""WSGI entry point: `granian --interface wsgi web.wsgi:app`, or any WSGI server."""

from web import create_app

app = create_app()
