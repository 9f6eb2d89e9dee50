"""The front door: TLS, authentication, authorization, negotiation, routing and rendering."""
