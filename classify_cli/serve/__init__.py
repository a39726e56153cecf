"""Stage 5, using a model: bulk prediction and its output formats (plain Python for a few texts), evaluation reports, pictures, the Python API."""
