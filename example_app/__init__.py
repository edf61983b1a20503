"""An example FastAPI host app with the bedrock-mw gateway mounted at ``/llm``.

Run it with ``python -m example_app``: with no AWS credentials it starts the built-in Bedrock
emulator in-process, so the whole thing works offline. The app factory is
:func:`example_app.app.create_app`; the Django variant is :mod:`example_app.django_site`.
"""
