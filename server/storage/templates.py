"""Layout templates, one per printer (device): stored as operators write them."""
from sqlalchemy import select

from tilltap.storage.database import utcnow
from tilltap.storage.schema import layout_templates


def get(engine, device_id):
    """(template, updated_at) of a printer, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(layout_templates).where(
            layout_templates.c.device_id == device_id)).first()
    return None if row is None else (row.template, row.updated_at)


def put(engine, device_id, template):
    """Stores a printer's template (replacing its old one); check it first
    (extract.load_template)."""
    values = {"template": template, "updated_at": utcnow()}
    with engine.begin() as conn:
        found = conn.execute(layout_templates.update().where(
            layout_templates.c.device_id == device_id).values(**values)).rowcount
        if not found:
            conn.execute(layout_templates.insert().values(device_id=device_id, **values))


def of_devices(conn, device_ids):
    """{device_id: template as stored} of the devices that have one."""
    return {row.device_id: row.template for row in conn.execute(
        select(layout_templates).where(layout_templates.c.device_id.in_(sorted(device_ids))))}
