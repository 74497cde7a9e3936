"""The Flask app: inbound message API, management API, health, and the operators' pages."""

from __future__ import annotations

from flask import Flask

from broker.core import metrics as broker_metrics
from broker.core.defaults import ADMIN_TOKEN_MIN_LENGTH
from broker.core.errors import ConfigError
from broker.core.settings import Settings
from web import errors, redis_gate
from web.request_body import refuse_large_bodies
from web.routing import ConversationIdConverter
from web.services import Services


def check_settings(settings: Settings) -> None:
    """ConfigError for settings the web process must not start with."""
    if settings.admin_token and len(settings.admin_token) < ADMIN_TOKEN_MIN_LENGTH:
        raise ConfigError(
            f"SWITCHBOARD_ADMIN_TOKEN must be at least {ADMIN_TOKEN_MIN_LENGTH} characters long "
            f"(it has {len(settings.admin_token)}); make one with "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def create_app(services: Services) -> Flask:
    """The app; ConfigError when the settings are not fit for a web process."""
    check_settings(services.settings)
    from web.blueprints import (
        admin_tokens,
        agent,
        api_tokens,
        conversations,
        dashboard,
        dead_turns,
        docs,
        health,
        inbound,
        legacy,
        manage,
        metrics,
        offloading,
        operations,
        schemas,
    )

    # The dashboard's scripts and styles; served by the app, nothing from elsewhere.
    app = Flask(__name__, static_url_path="/dashboard/static")
    app.extensions["switchboard"] = services
    app.config["MAX_CONTENT_LENGTH"] = services.settings.max_body_bytes
    app.url_map.converters["conversation"] = ConversationIdConverter
    # A path with "//" is answered as it is (404), not redirected: a conversation id may
    # hold slashes, sent as %2F.
    app.url_map.merge_slashes = False
    errors.register(app)
    redis_gate.guard_flask_routes(app, services.redis_gate)
    app.before_request(refuse_large_bodies)
    app.register_blueprint(health.bp)
    app.register_blueprint(inbound.bp)
    app.register_blueprint(legacy.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(conversations.bp)
    app.register_blueprint(agent.bp)
    app.register_blueprint(offloading.bp)
    app.register_blueprint(api_tokens.bp)
    app.register_blueprint(operations.bp)
    app.register_blueprint(dead_turns.bp)
    app.register_blueprint(admin_tokens.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(schemas.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(dashboard.bp)
    broker_metrics.start(services.redis, services.settings)
    return app


__all__ = ["Services", "create_app"]
