"""The shop's back office: Flask, Flask-SQLAlchemy, Flask-Login, with the notifier mounted.

Run: ``flask --app shop_admin run`` (or ``notifier serve --app shop_admin:create_app``).
"""

from __future__ import annotations

import os
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from notifier.web import HostLogin, NotifierWeb, db_session
from shop_models import Order, User, db
from werkzeug.exceptions import HTTPException

from notifier import admin_notification_service

shop = Blueprint("shop", __name__)
login_manager = LoginManager()
login_manager.login_view = "shop.login"


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The shop's app; the database URL is the one the worker uses (SHOP_DATABASE_URL)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("SHOP_SECRET_KEY", "dev-only-secret"),
        SQLALCHEMY_DATABASE_URI=os.environ["SHOP_DATABASE_URL"],
        # The cookie flags the notifier README recommends; the notifier never sets them.
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # The notifier's pages render inside the shop's layout, with the shop's navigation.
        NOTIFIER_BASE_TEMPLATE="shop/base.html",
    )
    app.config.update(config or {})
    db.init_app(app)
    login_manager.init_app(app)
    notifier = NotifierWeb(
        db=db, host_login=HostLogin.flask_login(is_admin=lambda user: user.is_admin)
    )
    if app.config.get("SHOP_NOTIFIER_FIRST"):  # the order does not matter; tests try both
        notifier.init_app(app)
        app.register_blueprint(shop)
    else:
        app.register_blueprint(shop)
        notifier.init_app(app)
    app.register_error_handler(404, _not_found)
    app.after_request(_shop_headers)
    return app


def _shop_headers(response: Any) -> Any:
    response.headers.setdefault("X-Shop", "back-office")
    # The shop's own policy: its pages use inline styles.
    response.headers.setdefault(
        "Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'"
    )
    return response


def _not_found(exc: HTTPException) -> Any:
    if request.path.startswith("/api/"):
        return jsonify(error="not found", shop=True), 404
    return render_template("shop/not_found.html"), 404


@shop.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The shop's own login form."""
    error = None
    if request.method == "POST":
        user = db.session.scalars(
            db.select(User).where(User.email == request.form.get("email", ""))
        ).first()
        if user is not None and user.check_password(request.form.get("password", "")):
            login_user(user)
            target = request.args.get("next") or ""
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("shop.dashboard")
            return redirect(target)
        error = "Wrong email or password."
    return render_template("shop/login.html", error=error)


@shop.post("/logout")
def logout() -> Any:
    """Sign out of the shop (and so of the notifier)."""
    logout_user()
    return redirect(url_for("shop.login"))


@shop.route("/admin/")
@login_required
def dashboard() -> str:
    """The shop's own admin home, with the notifier's bell in its header."""
    orders = db.session.scalars(db.select(Order).order_by(Order.id)).all()
    return render_template("shop/dashboard.html", orders=orders)


@shop.route("/admin/orders/<int:order_id>")
@login_required
def order(order_id: int) -> str:
    """One order."""
    found = db.session.get(Order, order_id) or abort(404)
    return render_template("shop/dashboard.html", orders=[found])


@shop.get("/api/orders")
@login_required
def list_orders() -> Any:
    """The shop's own JSON API."""
    orders = db.session.scalars(db.select(Order).order_by(Order.id)).all()
    return jsonify(orders=[{"id": o.id, "number": o.number} for o in orders])


@shop.post("/api/orders")
@login_required
def place_order() -> Any:
    """Place an order and tell the admins, in one transaction: both or neither."""
    body = request.get_json(force=True)
    placed = Order(number=str(body["number"]), total_cents=int(body.get("total_cents", 0)))
    db.session.add(placed)
    admin_notification_service.create_notification(
        db_session(),  # the shop's db.session, through NotifierWeb(db=db)
        type="system_info",
        title=f"Order {placed.number} placed",
        message=f"{current_user.name} placed order {placed.number}.",
    )
    if body.get("payment_fails"):
        raise RuntimeError("payment provider refused the order")
    db.session.commit()
    return jsonify(id=placed.id, number=placed.number), 201
