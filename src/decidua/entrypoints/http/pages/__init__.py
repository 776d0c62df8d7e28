"""Server-rendered pages of the web application (Jinja2 templates, plain CSS, a little vanilla JS)."""
