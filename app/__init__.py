"""leadflow: lead intake and assignment backend."""
