"""The application layer: each use case once (cases, accounts, users), audited here, with the ports it needs.

No FastAPI, Typer, SQLAlchemy or fhir.resources here: entry points parse their input, call one function of this
package and render its result; adapters implement its ports.
"""
