"""One module per API area; each exposes ``routes`` (a ``collabry.web.api.Routes``)."""
