"""Events as data: `FieldSpec` (fields.py) declares an event's fields once; from it come the
Arrow/Delta schema and the API's pydantic models (fields.py) and the validation rules
(validate.py) that ingestion, the live learner and the API apply alike.

Dagster-free, so the API can import it.
"""
