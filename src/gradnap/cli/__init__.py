"""The ``gradnap`` command line."""
