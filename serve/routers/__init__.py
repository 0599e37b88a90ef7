"""The API's routers, one module per resource; :func:`serve.app.create_app` includes them."""
