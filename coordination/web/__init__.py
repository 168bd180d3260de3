"""The caseworker's pages in bokmål, served by the same app and built on the same service
functions and access rules as the API (see ``coordination.web.pages``)."""
