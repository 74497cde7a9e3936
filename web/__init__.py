"""The Flask app: inbound message API, management API, health, and the operators' pages."""

from __future__ import annotations

from flask import Flask

from broker.core import metrics as broker_metrics
from web import errors
from web.request_body import refuse_large_bodies
from web.services import Services


def create_app(services: Services) -> Flask:
    from web.blueprints import (
        agent,
        api_tokens,
        conversations,
        dashboard,
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
    errors.register(app)
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
    app.register_blueprint(docs.bp)
    app.register_blueprint(schemas.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(dashboard.bp)
    broker_metrics.start(services.redis, services.settings)
    return app


__all__ = ["Services", "create_app"]
