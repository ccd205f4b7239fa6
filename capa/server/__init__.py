"""The HTTP server for teams (SPEC §11): capa.server.api, and the operations it offers."""
