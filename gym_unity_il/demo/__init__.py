"""Reading, writing and converting Unity `.demo` demonstration files."""
