"""fila's Chalice app: thin on purpose; routes, consumers and schedules live in chalicelib/."""

from chalice import Chalice

from chalicelib import admin, consumer, health, ingest, schedules, sweep

app = Chalice(app_name="fila")
for module in (health, ingest, consumer, sweep, schedules, admin):
    app.register_blueprint(module.blueprint)
