"""`integrity-pos register-node`: a shop_node user, the node's record, and a token."""

from __future__ import annotations

from sqlalchemy import select

from accounts.auth import Role, User
from audit.log import AuditEvent
from config.cli import main
from core.db import db
from nodes.chain import GENESIS
from nodes.models import ShopNode


def test_register_node_makes_the_user_and_node_and_prints_a_working_token(runner, factory, client):
    factory.shop("GJY", name="高家堰超市")
    result = runner.invoke(main, ["register-node", "--shop", "GJY", "--username", "node-gjy"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("ipos_")
    db.session.rollback()
    user = db.session.scalar(select(User).where(User.username == "node-gjy"))
    assert user.role == Role.SHOP_NODE and user.shop_code == "GJY"
    node = db.session.scalar(select(ShopNode).where(ShopNode.user_id == user.id))
    assert (node.last_seq, node.last_hash, node.last_sync_at) == (0, GENESIS, None)
    assert node.shop.code == "GJY"
    r = client.get("/api/v1/node", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.get_json()["last_seq"] == 0
    assert r.get_json()["offline_allowance_points"] == 200
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert "cli.register-node" in actions
    # The node's token opens nothing else.
    r = client.get("/api/v1/villages", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403


def test_one_node_per_shop_and_known_shops_only(runner, factory):
    factory.shop("GJY")
    ok = runner.invoke(main, ["register-node", "--shop", "GJY", "--username", "node-a"])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(main, ["register-node", "--shop", "GJY", "--username", "node-b"])
    assert again.exit_code == 1 and "GJY" in again.output
    unknown = runner.invoke(main, ["register-node", "--shop", "NOPE", "--username", "node-c"])
    assert unknown.exit_code == 1
    taken = runner.invoke(main, ["register-node", "--shop", "GJY", "--username", "node-a"])
    assert taken.exit_code == 1
    db.session.rollback()
    assert len(db.session.scalars(select(ShopNode)).all()) == 1
    assert db.session.scalar(select(User).where(User.username == "node-b")) is None
