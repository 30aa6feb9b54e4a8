"""The notifications page reads any query string without a 5xx (property-based, both tabs)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier import Database, admin_notification_service, platform_alert_service

PAGE = "/admin/notifications"
NAMES = [
    "tab",
    "page",
    "priority",
    "type",
    "is_read",
    "store_id",
    "severity",
    "alert_type",
    "is_resolved",
]
VALUES = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(
        [
            *("²", "٣", "2147483647", "2147483648", "1e3", " 7 ", "0", "-1", "true", "TRUE"),
            *("alerts", "critical", "import_failure", "system", "error", "\x00", "\u200b"),
        ]
    ),
)
QUERIES = st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=8)), VALUES)


@pytest.fixture
def seeded(database: Database) -> Database:
    with database.session_scope() as db:
        for i in range(30):
            admin_notification_service.create_notification(
                db, type="import_failure", title=f"n{i}", message="m", store_id=i % 3
            )
        platform_alert_service.create_or_increment_alert(
            db, alert_type="system", severity="error", title="disk"
        )
    return database


@pytest.mark.parametrize(
    "query",
    [
        "page=%C2%B2",
        "store_id=%C2%B2",
        "store_id=2147483648",
        "page=" + "9" * 40,
        "tab=alerts&page=" + "9" * 40,
        "tab=alerts&page=%C2%B2&is_resolved=%C2%B2",
        "page=-3&store_id=-1",
    ],
)
def test_query_strings_that_used_to_fail(
    browser: tuple[FlaskClient, str], seeded: Database, query: str
) -> None:
    client, _ = browser
    response = client.get(f"{PAGE}?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)[-500:]


def test_refused_values_are_explained_and_dropped(
    browser: tuple[FlaskClient, str], seeded: Database
) -> None:
    client, _ = browser
    html = client.get(f"{PAGE}?store_id=2147483648").get_data(as_text=True)
    assert "Ignored store id" in html and "n29" in html  # the unfiltered list, newest first
    html = client.get(f"{PAGE}?store_id=%C2%B2").get_data(as_text=True)
    assert "Ignored store id" in html
    html = client.get(f"{PAGE}?store_id=1").get_data(as_text=True)
    assert "Ignored" not in html and "Store 1 \u00d7" in html


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=QUERIES, tab=st.sampled_from(["notifications", "alerts"]))
def test_no_query_string_gives_a_5xx(
    browser: tuple[FlaskClient, str], seeded: Database, query: dict[str, str], tab: str
) -> None:
    client, _ = browser
    response = client.get(PAGE, query_string={"tab": tab, **query})
    assert response.status_code < 500, (query, response.get_data(as_text=True)[-500:])


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=st.one_of(st.text(max_size=30), st.text(max_size=20).map(lambda t: "/" + t)))
def test_login_next_never_fails_nor_leaves_the_app(
    browser: tuple[FlaskClient, str], target: str
) -> None:
    client, _ = browser  # signed in: the login page sends the admin straight to ``next``
    response = client.get("/admin/login", query_string={"next": target})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
