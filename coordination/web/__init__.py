"""The caseworker's pages in bokmål, served by the same app and built on the same service
functions and access rules as the API (see ``coordination.web.pages``).

Plain HTML forms with POST-redirect-GET carry every change, so everything works without
JavaScript. The one script (``static/app.js``, no build step) only adds copy buttons and
moves focus to an error summary or a new result; htmx was left out because whole-page
answers already keep the pages fast (see ``tests/web/timings.py``) and keep focus and
the back button behaving as screen-reader users expect.
"""
