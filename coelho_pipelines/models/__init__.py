"""Model code: estimators, encoders and MLflow model wrappers (heavy imports allowed here)."""
