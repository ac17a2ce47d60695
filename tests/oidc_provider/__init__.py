"""A small OpenID Connect provider for the company sign-on tests: django-oidc-provider in a
Django project of its own, run by gunicorn on loopback (tests/sso/conftest.py). It has its
own SQLite database, users and groups, a `groups` claim, and a control API the tests use to
create users and clients, change groups, rotate the signing key and make a user leave."""
