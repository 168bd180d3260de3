"""The HTTP API: thin controllers that decode msgspec Structs, call a service function in
one transaction, and encode the answer."""
