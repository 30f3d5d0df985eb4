"""Keygrant's benchmark: hot paths against a bare-Django floor, in one gunicorn. See bench/README.md."""
