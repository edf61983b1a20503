"""A minimal Django project serving the bedrock-mw gateway beside Django (see ``asgi.py``)."""
