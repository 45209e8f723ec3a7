"""Campaign rows for the dispatcher's tests and benchmark, written straight into the tables.

``CampaignDb(url)`` migrates a database and holds its engine, sessions, a route key and the
``Subscribers`` on it. ``subscribe`` adds subscribers (consent and an encrypted address, in
bulk), ``campaign`` a ``campaigns`` row with the dispatcher's JSON definition, ``queue`` the
outbox rows (state pending, attempts 0, due now, key sha256 of "name:conversation id") the
way ``bot.campaigns.queue`` writes them. Addresses are fictional: +999 numbers (not assigned)
and chat ids from 7,000,000,000 up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet

from bot.campaigns.models import Campaign, OutboxMessage, Subscriber
from bot.campaigns.subscribers import Subscribers
from bot.storage import make_engine, session_factory, upgrade

NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.timezone.utc)  # a Thursday


@contextmanager
def helpline_database(tmp_path: Path, monkeypatch) -> Iterator:
    """The environment of ``helpline`` commands on a migrated SQLite file in ``tmp_path``
    with the sample deployment and places and its own secrets file; yields the sessions."""
    from bot.services.places import import_places, read_places
    from bot.settings import PROJECT_ROOT

    url = f"sqlite:///{tmp_path}/helpline.db"
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    monkeypatch.setenv("HELPLINE_SECRETS_FILE", str(tmp_path / "secrets.json"))
    monkeypatch.setenv("HELPLINE_DEPLOYMENT", str(PROJECT_ROOT / "deploy" / "sample.yml"))
    monkeypatch.delenv("HELPLINE_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("HELPLINE_ROUTE_KEYS", raising=False)
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        import_places(session, read_places(PROJECT_ROOT / "data" / "gazetteer" / "places.csv"))
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def any_hour_deployment(folder: Path) -> Path:
    """The sample deployment with ``campaigns.daytime`` the whole day, for a test that sends a
    campaign file (whose window must lie within daytime) at whatever hour it runs."""
    import yaml

    from bot.settings import PROJECT_ROOT

    data = yaml.safe_load((PROJECT_ROOT / "deploy" / "sample.yml").read_text(encoding="utf-8"))
    data["campaigns"]["daytime"] = "00:00-24:00"
    path = Path(folder) / "any-hour-deployment.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


# each says how to stop as bot.campaigns.definition requires (STOP or the language's word on
# SMS, /stop on Telegram)
TEXTS = {"en": "Real jobs never ask you to pay a fee. Reply HELP to talk to us, STOP or /stop "
               "to end.",
         "fr": "Un vrai emploi ne demande jamais de payer. Repondez AIDE pour nous parler, STOP "
               "ou /stop pour arreter.",
         "ar": "الوظيفة الحقيقية لا تطلب منك دفع رسوم. أرسل مساعدة للتحدث معنا، أو STOP أو /stop "
               "للإيقاف.",
         "es": "Un empleo real nunca pide pagar. Responde AYUDA para hablar con nosotros, STOP o "
               "/stop para salir."}


def key_of(name: str, recipient: str) -> str:
    return hashlib.sha256(f"{name}:{recipient}".encode("utf-8")).hexdigest()


def number(i: int) -> str:
    return f"+999{i:09d}"


def chat_id(i: int) -> str:
    return str(7_000_000_000 + i)


def definition(name: str, texts: Optional[dict] = None, window: Sequence[str] = ("00:00", "23:59"),
               cap_per_week: int = 2, channels: Sequence[str] = ("sms", "telegram"),
               telegram_channel: Optional[dict] = None) -> str:
    texts = dict(TEXTS if texts is None else texts)
    return json.dumps({
        "name": name, "texts": texts,
        "audience": {"languages": sorted(texts), "areas": None, "channels": list(channels)},
        "area_codes": None, "window": {"start": window[0], "end": window[1]},
        "cap_per_week": cap_per_week, "telegram_channel": telegram_channel,
    }, ensure_ascii=False)


@dataclass(frozen=True)
class Person:
    id: int
    conversation_id: str
    channel: str
    language: str
    address: str


class CampaignDb:
    """A migrated database with the campaign tables filled by the test."""

    def __init__(self, url: str, route_key: Optional[bytes] = None, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            upgrade(self.engine)
        self.sessions = session_factory(self.engine)
        self.route_key = route_key or Fernet.generate_key()
        self.fernet = MultiFernet([Fernet(self.route_key)])
        self.subscribers = Subscribers(self.sessions, self.fernet)

    def close(self) -> None:
        self.engine.dispose()

    # -- writing -------------------------------------------------------------------------------

    def subscribe(self, count: int, channel: str = "sms", language: str = "en",
                  area: Optional[str] = None, start: int = 0, chunk: int = 5000,
                  consented_at: Optional[dt.datetime] = None) -> list[Person]:
        """Adds ``count`` subscribers on ``channel`` (addresses numbered from ``start``), who
        consented at ``consented_at`` (default: 30 days before ``NOW`` or before the real
        time, whichever is earlier, so that tests on the real clock never find their consent
        expired: ``campaigns.consent_months``)."""
        if consented_at is None:
            real = dt.datetime.now(dt.timezone.utc)
            consented_at = min(NOW, real) - dt.timedelta(days=30)
        table = Subscriber.__table__
        people = []
        rows = []
        for i in range(start, start + count):
            address = number(i) if channel == "sms" else chat_id(i)
            conversation = hashlib.sha256(f"{channel}:{i}".encode()).hexdigest()
            rows.append({"conversation_id": conversation, "channel": channel, "language": language,
                         "area": area, "consented_at": consented_at,
                         "address": self.fernet.encrypt(address.encode())})
            people.append((conversation, language, address))
        with self.engine.begin() as connection:
            before = connection.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0
            for begin in range(0, len(rows), chunk):
                connection.execute(sa.insert(table), rows[begin:begin + chunk])
            ids = dict(connection.execute(
                sa.select(table.c.conversation_id, table.c.id).where(table.c.id > before)).all())
        return [Person(ids[c], c, channel, lang, a) for c, lang, a in people]

    def campaign(self, name: str, queued_at: dt.datetime = NOW, **options) -> int:
        with self.engine.begin() as connection:
            return connection.execute(sa.insert(Campaign.__table__).values(
                name=name, definition=definition(name, **options), file_hash="0" * 64,
                queued_at=queued_at)).inserted_primary_key[0]

    def queue(self, campaign_id: int, people: Iterable[Person], due: dt.datetime = NOW,
              channel_post: Optional[str] = None, chunk: int = 5000) -> int:
        """Outbox rows for ``people`` (and the Telegram channel's post in ``channel_post``'s
        language); returns how many."""
        with self.engine.connect() as connection:
            name = connection.execute(sa.select(Campaign.__table__.c.name)
                                      .where(Campaign.__table__.c.id == campaign_id)).scalar()
        rows = [{"campaign_id": campaign_id, "subscriber_id": p.id,
                 "idempotency_key": key_of(name, p.conversation_id), "channel": p.channel,
                 "language": p.language, "state": "pending", "attempts": 0,
                 "next_attempt_at": due} for p in people]
        if channel_post:
            rows.append({"campaign_id": campaign_id, "subscriber_id": None,
                         "idempotency_key": key_of(name, "telegram_channel"),
                         "channel": "telegram_channel", "language": channel_post,
                         "state": "pending", "attempts": 0, "next_attempt_at": due})
        with self.engine.begin() as connection:
            for begin in range(0, len(rows), chunk):
                connection.execute(sa.insert(OutboxMessage.__table__), rows[begin:begin + chunk])
        return len(rows)

    def sent_before(self, person: Person, campaign_id: int, sent_at: dt.datetime,
                    key_suffix: str = "") -> None:
        """An outbox row already sent to ``person`` at ``sent_at`` (for the weekly cap)."""
        with self.engine.begin() as connection:
            connection.execute(sa.insert(OutboxMessage.__table__).values(
                campaign_id=campaign_id, subscriber_id=person.id,
                idempotency_key=key_of(f"before{key_suffix}", f"{person.conversation_id}:{sent_at}"),
                channel=person.channel, language=person.language, state="sent", attempts=1,
                next_attempt_at=sent_at, sent_at=sent_at, provider_ref="earlier"))

    # -- reading -------------------------------------------------------------------------------

    def rows(self, campaign_id: Optional[int] = None) -> list[dict]:
        table = OutboxMessage.__table__
        query = sa.select(table).order_by(table.c.id)
        if campaign_id is not None:
            query = query.where(table.c.campaign_id == campaign_id)
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(query).mappings()]

    def states(self, campaign_id: Optional[int] = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows(campaign_id):
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        return counts

    def row_of(self, person: Person, campaign_id: int) -> dict:
        [row] = [r for r in self.rows(campaign_id) if r["subscriber_id"] == person.id]
        return row

    def subscriber_ids(self) -> set[int]:
        with self.engine.connect() as connection:
            return set(connection.execute(sa.select(Subscriber.__table__.c.id)).scalars())


def write_secrets(path: Path, route_key: bytes) -> None:
    """A secrets file (0600) whose route key opens the addresses ``CampaignDb`` wrote."""
    path.write_text(json.dumps({"pseudonym_key": "k" * 43, "route_keys": [route_key.decode()]}))
    path.chmod(0o600)


def write_credentials(path: Path, twilio, telegram) -> None:
    """A credentials file as the Rasa server reads it, pointing at the fake providers; the
    secrets come from ${TEST_TWILIO_SID}, ${TEST_TWILIO_TOKEN} and ${TEST_TELEGRAM_TOKEN}."""
    path.write_text(f"""
channels.rest.HelplineRestInput: {{}}
channels.sms.SmsInput:
  account_sid: ${{TEST_TWILIO_SID}}
  auth_token: ${{TEST_TWILIO_TOKEN}}
  sender: "+9995550100"
  webhook_url: https://helpline.example.org/webhooks/sms/webhook
  api_url: {twilio.url}
channels.telegram.TelegramInput:
  token: ${{TEST_TELEGRAM_TOKEN}}
  secret_token: test-webhook-secret
  api_url: {telegram.api_url}
""")


def credentials_env(twilio, telegram) -> dict:
    return {"TEST_TWILIO_SID": twilio.account_sid, "TEST_TWILIO_TOKEN": twilio.auth_token,
            "TEST_TELEGRAM_TOKEN": telegram.token}


def aware(moment: Optional[dt.datetime]) -> Optional[dt.datetime]:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment
