"""Stage 5, using a model: bulk prediction and its output formats, evaluation reports, pictures, the Python API."""
