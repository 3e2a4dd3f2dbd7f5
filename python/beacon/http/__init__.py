"""The public HTTP front end: uvloop + httptools."""
