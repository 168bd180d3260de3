"""iCalendar feeds: tokens, rendering, HTTP caching and the runtime cache."""
