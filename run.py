"""The gateway's one entry point.

python run.py [serve] [--host H] [--port P] [--seed-orders FILE]
python run.py cluster [--gateways N] [--rasa-servers N] [--voice-gateways N] [--port P] [serve options]
python run.py nlu train [--force]
python run.py nlu parse < lines.txt
python run.py nlu eval FILE.yml [--threshold X] [--today YYYY-MM-DD] [--png FILE] [--json FILE] [--errors N]
python run.py seed --orders FILE.json
python run.py routes solve|plan|seed-demo|replan|actual|carbon …
python run.py ocr IMAGE [IMAGE ...] [--json] [--order-check] [--engine combined|rapidocr|tesseract]
python run.py kb check [FILE] | kb ask "问题" [--file FILE]
python run.py audit verify [--head HASH] [--json]
python run.py backoffice staff-add|staff-list|staff-token|sweep …
python run.py ivr transcribe FILE.wav [FILE.wav ...] [--json] [--engine vosk|whisper] [--language zh|en|…]
python run.py ivr prepare
python run.py report peak --from YYYY-MM-DD --to YYYY-MM-DD [--json] [--csv FILE]
python run.py rest customer-token --phone 13800138000 [--email E] [--name N] [--hours 24]
python run.py config reference [--check FILE] | config check | config nginx [--check FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import logging
import signal
import smtplib
import sys
import time
from collections.abc import AsyncIterator
from datetime import date
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from tqdm import tqdm

from backoffice import Backoffice
from backoffice.cli import add_backoffice_commands, run_backoffice_command
from backoffice.config import ConfigInvalid
from backoffice.demo import ensure_demo_staff
from backoffice.routing.cli import add_routes_commands, run_routes_command
from channels.app_im import sign_user
from channels.customer_token import sign_customer_token
from configuration import SettingsError
from configuration import variables as variables_of
from console import SessionStore
from dialogue.knowledge import KnowledgeBase, KnowledgeBaseError
from gateway import Gateway, GatewayBuilder, Settings, build_app, log_privacy
from gateway.channel_registry import CHANNELS
from gateway.cluster import run_cluster
from gateway.demo import demo_secret
from gateway.nginx_site import production_site
from gateway.nginx_site import render as render_site
from gateway.settings import configuration_reference
from ivr.cli import add_ivr_commands, run_ivr_command
from ivr.recognizer import EngineUnavailable as SpeechEngineUnavailable
from media_ocr.batch import read_files
from media_ocr.engines import ENGINE_NAMES, EngineUnavailable
from media_ocr.validation import OrderCheck
from nlu import NluProject, NluUnavailable
from nlu.evaluation import evaluate, format_report, load_test_examples, reference_date, write_confusion_png
from nlu.project import TrainingFailed
from nlu.rasa_yaml import RasaDataError
from nlu.understanding import UnderstandingClient, today_in
from quality.demo import seed_demo_quality
from quality.peak import csv_rows, format_text, peak_report
from shop import SeedError
from shop.policy import PolicyError
from standins import ReceivedMail, SmtpSink
from store.mongo import ConversationStore, MergeRefused
from supervisor import ChildStartError


def _knowledge(args: argparse.Namespace) -> int:
    if args.kb_command == "check":
        kb = KnowledgeBase.load(args.file)
        categories: dict[str, int] = {}
        for entry in kb.entries:
            categories[entry.category] = categories.get(entry.category, 0) + 1
        print(f"{len(kb)} entries: " + ", ".join(f"{c} {n}" for c, n in sorted(categories.items())))
        return 0
    kb = KnowledgeBase.load(args.file)
    found = kb.answer(args.question, args.lang)
    if found is None:
        print("no answer (below the threshold): the bot offers an agent")
        return 1
    print(f"[{found.entry.id} {found.score:.2f}] {found.entry.answer_in(args.lang)}")
    for entry, score in found.runners_up:
        print(f"  also {entry.id} {score:.2f}")
    return 0


DEMO_MAIL_ADDRESS = "kefu@demo-shop.localhost"
"""The demo shop's service address (``make run``: e-mail on a local SMTP port)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py", description="Multi-channel after-sales service gateway.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway (the default command)")
    _serve_options(serve)

    cluster = commands.add_parser(
        "cluster", help="run several gateway processes on one store behind a private nginx (scale-out)"
    )
    _serve_options(cluster)
    cluster.add_argument("--gateways", type=int, default=2, help="gateway processes (default 2)")
    cluster.add_argument(
        "--rasa-servers", type=int, default=2, help="embedded Rasa servers when RASA_URL is unset (default 2)"
    )
    cluster.add_argument(
        "--voice-gateways",
        type=int,
        default=0,
        help="extra gateway processes that alone answer the phone line (TWILIO_VOICE_NUMBER; default 0: all do)",
    )

    mail = commands.add_parser("mail", help="send a mail to make run's e-mail channel (as a customer would)")
    mail.add_argument("text", help="the mail's text")
    mail.add_argument("--from", dest="sender", default="zhang.wei@example.com", help="the customer's address")
    mail.add_argument("--to", default=DEMO_MAIL_ADDRESS, help="the shop's address")
    mail.add_argument("--subject", default="售后咨询")
    mail.add_argument("--smtp", default="127.0.0.1:2525", help="the gateway's SMTP listener (host:port)")

    nlu = commands.add_parser("nlu", help="train the NLU model or parse text with it")
    nlu_commands = nlu.add_subparsers(dest="nlu_command", metavar="NLU_COMMAND", required=True)
    train = nlu_commands.add_parser("train", help="train if the training data or config changed")
    train.add_argument("--force", action="store_true", help="train even if the model is up to date")
    nlu_commands.add_parser("parse", help="read UTF-8 lines on stdin, write Rasa /model/parse JSON lines")
    evaluate = nlu_commands.add_parser("eval", help="evaluate on Rasa NLU test data; writes a confusion-matrix PNG")
    evaluate.add_argument("file", type=Path, metavar="FILE.yml", help="Rasa NLU YAML, `dialect` metadata as tags")
    evaluate.add_argument("--threshold", type=float, help="confidence threshold (default: NLU_CONFIDENCE_THRESHOLD)")
    evaluate.add_argument(
        "--today", type=date.fromisoformat, help="what 今天 means (default: the file's `# reference_date:`, else today)"
    )
    evaluate.add_argument("--png", type=Path, help="confusion matrix image (default var/nlu-eval/confusion.png)")
    evaluate.add_argument("--json", type=Path, dest="json_out", metavar="FILE", help="also write the report as JSON")
    evaluate.add_argument(
        "--errors",
        type=int,
        default=25,
        metavar="N",
        help="misclassified examples to print (and write to --json); 0: figures only, no example text",
    )

    seed = commands.add_parser("seed", help="load (upsert) orders into the embedded demo shop")
    seed.add_argument("--orders", type=Path, required=True, metavar="FILE.json", help='{"orders": [...]}')

    add_routes_commands(commands)
    add_backoffice_commands(commands)
    ocr = commands.add_parser("ocr", help="read return slips, labels and invoices from photos")
    ocr.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    ocr.add_argument("--json", action="store_true", help="one JSON object per image and line on stdout")
    ocr.add_argument("--order-check", action="store_true", help="check the fields against the shop's orders")
    ocr.add_argument("--engine", choices=ENGINE_NAMES, help="OCR engine (default OCR_ENGINE, combined)")

    kb = commands.add_parser("kb", help="check the after-sales knowledge base or ask it a question")
    kb_commands = kb.add_subparsers(dest="kb_command", required=True)
    kb_check = kb_commands.add_parser("check", help="validate the file and list its entries by category")
    kb_check.add_argument("file", nargs="?", type=Path, help="default: the shipped dialogue/knowledge/aftersales.yml")
    kb_ask = kb_commands.add_parser("ask", help="print the answer the bot would give, with its score")
    kb_ask.add_argument("question")
    kb_ask.add_argument("--file", type=Path)
    kb_ask.add_argument("--lang", default="zh", choices=("zh", "en"))

    add_ivr_commands(commands)

    customers = commands.add_parser("customers", help="merge two customers who are one person (audited)")
    customer_commands = customers.add_subparsers(dest="customers_command", required=True)
    merge = customer_commands.add_parser("merge", help="fold SOURCE into TARGET; journals a customers_merged event")
    merge.add_argument("source")
    merge.add_argument("target")
    merge.add_argument("--reason", required=True, help="why (kept in the audit event)")
    merge.add_argument("--actor", required=True, help="who decided (kept in the audit event)")

    report = commands.add_parser("report", help="reports read from the store")
    report_commands = report.add_subparsers(dest="report_command", required=True)
    peak = report_commands.add_parser("peak", help="post-peak review: volumes, service rates, refunds, failures")
    peak.add_argument("--from", dest="first", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD")
    peak.add_argument("--to", dest="last", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD",
                      help="last day, inclusive (days in SHOP_TIMEZONE)")  # fmt: skip
    peak.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    peak.add_argument("--csv", type=Path, metavar="FILE", help="also write every figure as section,key,field,value")

    rest = commands.add_parser("rest", help="the REST channel's customer tokens (as the shop's backend signs them)")
    rest_commands = rest.add_subparsers(dest="rest_command", required=True)
    token = rest_commands.add_parser(
        "customer-token", help="print a signed customer token (REST_CUSTOMER_TOKEN_SECRET, else the demo secret)"
    )
    token.add_argument("--phone", help="the signed-in user's verified mobile number")
    token.add_argument("--email", help="the signed-in user's verified e-mail address")
    token.add_argument("--name")
    token.add_argument("--hours", type=float, default=24.0, help="valid this long (default 24)")

    config = commands.add_parser("config", help="the configuration: every variable, its default and meaning")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    config_reference = config_commands.add_parser("reference", help="print docs/configuration.md (Markdown)")
    config_reference.add_argument("--check", type=Path, metavar="FILE", help="exit 1 unless FILE is current")
    config_commands.add_parser("check", help="read the settings from the environment; `error: …` and exit 2 if wrong")
    config_nginx = config_commands.add_parser(
        "nginx", help="print deploy/nginx/aftersales.conf (the production rendering of the nginx template)"
    )
    config_nginx.add_argument("--check", type=Path, metavar="FILE", help="exit 1 unless FILE is current")

    _serve_options(parser)  # `python run.py --port 9000` means `serve --port 9000`
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Libraries that log every request at INFO: httpx's lines carry the Telegram bot token in the
    # URL (/bot<token>/sendMessage), aiosmtpd writes a dozen lines per mail.
    for chatty in ("httpx", "mail.log"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # SIGTERM (``timeout``, a supervisor) unwinds like Ctrl-C, so every command stops the servers
    # it started (an embedded Rasa or store) instead of leaving them running; `serve` has its own.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if args.command == "nlu" and args.nlu_command == "train":
            NluProject().train(force=args.force)
            return 0
        if args.command == "nlu" and args.nlu_command == "parse":
            return asyncio.run(_parse_lines())
        if args.command == "nlu" and args.nlu_command == "eval":
            return asyncio.run(_evaluate(args.file, args.threshold, args.today, args.png, args.json_out, args.errors))
        if args.command == "seed":
            return asyncio.run(_seed(args.orders))
        if args.command == "routes":
            return asyncio.run(run_routes_command(args, _database, Settings.from_env().var_dir))
        if args.command == "kb":
            return _knowledge(args)
        if args.command in ("audit", "backoffice"):
            return asyncio.run(run_backoffice_command(args, _backoffice, _end_console_sessions))
        if args.command == "customers":
            return asyncio.run(_merge_customers(args.source, args.target, reason=args.reason, actor=args.actor))
        if args.command == "report":
            return asyncio.run(_peak_report(args.first, args.last, as_json=args.json, csv_path=args.csv))
        if args.command == "ivr":
            voice = Settings.from_env().channel("voice")
            return run_ivr_command(args, voice.engine_config(), voice.default_language)
        if args.command == "cluster":
            return asyncio.run(_cluster(args))
        if args.command == "rest":
            return _customer_token(args)
        if args.command == "mail":
            return _send_mail(args)
        if args.command == "config":
            return _config(args)
        if args.command == "ocr":
            engine = args.engine or Settings.from_env().ocr.engine
            return asyncio.run(_ocr(args.images, engine, as_json=args.json, order_check=args.order_check))
        return asyncio.run(
            _serve(args.host, args.port, args.seed_orders, demo_staff=args.demo_staff, demo_quality=args.demo_quality)
        )
    except (
        TrainingFailed,
        SeedError,
        ChildStartError,
        RasaDataError,
        NluUnavailable,
        EngineUnavailable,
        SettingsError,
        PolicyError,
        KnowledgeBaseError,
        MergeRefused,
        ConfigInvalid,
        SpeechEngineUnavailable,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130


def _config(args: argparse.Namespace) -> int:
    if args.config_command == "check":
        Settings.from_env()
        print("ok")
        return 0
    text = render_site(production_site()) if args.config_command == "nginx" else configuration_reference()
    if args.check is not None:
        current = args.check.read_text(encoding="utf-8") if args.check.exists() else ""
        if current != text:
            command = f"run.py config {args.config_command} > {args.check}"
            print(f"{args.check} is out of date: run `{command}`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


def _customer_secret(settings: Settings) -> str:
    return settings.channel("rest").customer_token_secret or demo_secret(settings.var_dir, "rest_customer_token_secret")


def _customer_token(args: argparse.Namespace) -> int:
    claims = {k: v for k, v in (("phone", args.phone), ("email", args.email), ("name", args.name)) if v}
    if "phone" not in claims and "email" not in claims:
        raise SettingsError("a customer token names --phone or --email")
    secret = _customer_secret(Settings.from_env())
    print(sign_customer_token(secret, claims, ttl_seconds=int(args.hours * 3600)))
    return 0


def _serve_options(parser: argparse.ArgumentParser) -> None:
    # The defaults are the settings' (GATEWAY_HOST, GATEWAY_PORT), read when the command runs: --help reads nothing.
    parser.add_argument("--host", help="interface to listen on (default GATEWAY_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default GATEWAY_PORT, 8080)")
    parser.add_argument("--seed-orders", type=Path, metavar="FILE.json", help="upsert these orders at start")
    parser.add_argument(
        "--demo-staff", action="store_true", help="create demo backoffice staff (tokens in var/demo-staff.json)"
    )
    parser.add_argument(
        "--demo-quality", action="store_true",
        help="once the NLU is up, drive demo conversations through the pipeline (once per database)",
    )  # fmt: skip


async def _serve(
    host: str | None,
    port: int | None,
    seed_orders: Path | None,
    *,
    demo_staff: bool = False,
    demo_quality: bool = False,
) -> int:
    # Phone numbers, e-mail addresses and tokens are masked in every log record (gateway/log_privacy.py);
    # httpx is already quieted in main().
    log_privacy.install()
    settings = Settings.from_env()
    host, port = host or settings.gateway.host, port or settings.gateway.port
    settings = settings.with_changes(gateway__host=host, gateway__port=port)
    if demo_staff and not settings.channel("rest").customer_token_secret:  # the demo shop signs its own customers
        settings = settings.with_channel("rest", customer_token_secret=_customer_secret(settings))
    mail_sink: SmtpSink | None = None
    if demo_staff:
        settings, mail_sink = await _demo_channels(settings)
    gateway = GatewayBuilder(settings).build()
    runner = web.AppRunner(build_app(gateway, wait_for_nlu=False), handle_signals=False, access_log=None)
    try:
        if seed_orders is not None:
            count = await gateway.seed_orders(seed_orders)
            print(f"seeded {count} orders from {seed_orders}", file=sys.stderr)
        staff_lines = ""
        if demo_staff:
            await gateway.start_store()
            assert gateway.backoffice is not None
            accounts = await ensure_demo_staff(gateway.backoffice.staff, settings.var_dir)
            staff_lines = (
                "  demo staff    console password and API token (Authorization: Bearer …), in "
                f"{settings.var_dir / 'demo-staff.json'}\n"
                + "".join(
                    f"                {a.member.id:16} {','.join(r.value for r in a.member.roles):17} "
                    f"{a.password:18} {a.token}\n"
                    for a in accounts
                )
            )
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        base = f"http://{host}:{port}"
        store = settings.store.mongodb_uri or f"embedded nx-27017, data in {settings.var_dir / 'mongo'}"
        print(
            f"Gateway listening on {base}\n"
            f"  health        GET  {base}/health  (503 until the store and NLU are ready)\n"
            f'  REST channel  POST {base}/webhooks/rest/webhook  {{"sender": "...", "message": "..."}}\n'
            f"                (keep the X-Session-Token of the first answer; a shop user's phone comes as a signed\n"
            f"                customer token: .venv/bin/python run.py rest customer-token --phone 13800138000)\n"
            f"  channels      {', '.join(c.name for c in gateway.channels)}\n"
            f"{_chat_page_line(settings, base)}"
            f"{_mail_lines(settings, mail_sink)}"
            f"{_outside_account_lines(settings)}"
            f"  console       {base}/console/  (agents' inbox, quality dashboard; sign in as a staff member)\n"
            f"  backoffice    {base}/api/backoffice/…  (OpenAPI: {base}/api/openapi.json)\n"
            f"{staff_lines}"
            f"  store         {store}\n"
            f"  NLU           {', '.join(settings.nlu.rasa_urls) or 'embedded Rasa server (trains on first start)'}",
            flush=True,
        )
        demo = asyncio.create_task(_demo_quality(gateway)) if demo_quality else None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        print("shutting down", file=sys.stderr, flush=True)
        if demo is not None:
            demo.cancel()
    finally:
        await runner.cleanup()  # stops the gateway and its child servers
        await gateway.stop()  # in case the app never started (seed or bind failed)
        if mail_sink is not None:
            await mail_sink.stop()
    return 0


async def _cluster(args: argparse.Namespace) -> int:
    if args.gateways < 1 or args.rasa_servers < 1 or args.voice_gateways < 0:
        raise SettingsError("--gateways and --rasa-servers must be at least 1, --voice-gateways at least 0")
    settings = Settings.from_env()
    if args.voice_gateways and not settings.channel("voice").voice_number:
        raise SettingsError("--voice-gateways answer the phone line: set TWILIO_VOICE_NUMBER (and the IVR settings)")
    serve_args = ["--host", "127.0.0.1"]
    if args.seed_orders is not None:
        serve_args += ["--seed-orders", str(args.seed_orders.resolve())]
    demo_flags = (("--demo-staff", args.demo_staff), ("--demo-quality", args.demo_quality))
    serve_args += [flag for flag, on in demo_flags if on]
    return await run_cluster(
        settings,
        gateways=args.gateways,
        rasa_servers=args.rasa_servers,
        host=args.host or settings.gateway.host,
        port=args.port or settings.gateway.port,
        serve_args=serve_args,
        voice_gateways=args.voice_gateways,
    )


async def _demo_quality(gateway: Gateway) -> None:
    """In the background, so start-up stays fast: wait for the NLU, then seed the quality demo."""
    for _ in range(600):
        if all((await gateway.ready()).values()) and gateway.store is not None:
            break
        await asyncio.sleep(1)
    else:
        print("quality demo skipped: the NLU did not come up", file=sys.stderr, flush=True)
        return
    assert gateway.store is not None
    handlers = {channel.name: gateway.handler_for(channel) for channel in gateway.channels}
    try:
        assert gateway.handoff is not None
        count = await seed_demo_quality(gateway.store, handlers, gateway.handoff)
    except Exception:
        logging.getLogger(__name__).exception("quality demo failed")
        return
    if count:
        print(f"quality demo: {count} demo conversations driven through the pipeline", file=sys.stderr, flush=True)


async def _demo_channels(settings: Settings) -> tuple[Settings, SmtpSink | None]:
    """``make run``'s channels that need no outside account: the app chat (a demo secret kept in
    var/) and e-mail on a local SMTP port, its replies kept by a local relay. Configured channels
    are left as they are."""
    if not settings.channel("app").secret:
        settings = settings.with_channel("app", secret=demo_secret(settings.var_dir, "app_im_secret"))
    sink = None
    if not settings.channel("email").enabled:
        sink = SmtpSink()
        mailbox = settings.var_dir / "demo-mail"
        sink.on_mail = lambda received: _keep_mail(mailbox, received)
        await sink.start()
        settings = settings.with_channel(
            "email", addresses=(DEMO_MAIL_ADDRESS,), smtp_listen="127.0.0.1:2525", smtp_relay=f"127.0.0.1:{sink.port}"
        )
    return settings, sink


def _keep_mail(mailbox: Path, received: ReceivedMail) -> None:
    """A reply the demo relay took: kept as a file to open in any mail program."""
    mailbox.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{len(list(mailbox.iterdir())) + 1:04d}.eml"
    (mailbox / name).write_bytes(received.mail.as_bytes())


def _mail_lines(settings: Settings, sink: SmtpSink | None) -> str:
    if sink is None:
        return ""
    return (
        f"  e-mail        send to {DEMO_MAIL_ADDRESS} through SMTP 127.0.0.1:2525, e.g.\n"
        f"                .venv/bin/python run.py mail --from zhang.wei@example.com '订单202611150001到哪了'\n"
        f"                replies are kept in {settings.var_dir / 'demo-mail'}/\n"
    )


def _outside_account_lines(settings: Settings) -> str:
    """Channels that need an account with a provider this machine cannot reach, and how to turn them on."""
    lines = []
    for spec in CHANNELS:
        if spec.outside_account and not settings.channel(spec.name).enabled:
            variables = [name for name, field in variables_of(spec.settings) if not field.metadata.get("default_text")]
            lines.append(f"                {spec.name:9} set {', '.join(variables[:3])} …\n")
    return "  off (need an outside account):\n" + "".join(lines) if lines else ""


def _send_mail(args: argparse.Namespace) -> int:
    host, _, port = str(args.smtp).rpartition(":")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = args.sender, args.to, args.subject
    message["Message-ID"] = make_msgid(domain=args.sender.rpartition("@")[2] or "localhost")
    message.set_content(args.text)
    with smtplib.SMTP(host or "127.0.0.1", int(port), timeout=30) as smtp:
        smtp.send_message(message)
    print(f"sent {message['Message-ID']}; the reply arrives in var/demo-mail/ (make run)")
    return 0


def _chat_page_line(settings: Settings, base: str) -> str:
    """A signed link to the customer chat page for a demo user, when the app channel is on."""
    secret = settings.channel("app").secret
    if not secret:
        return ""
    expires = int(time.time()) + 24 * 3600
    token = sign_user(secret, "demo", expires)
    return f"  chat page     {base}/chat?user=demo&expires={expires}&token={token}  (demo user, 24 h)\n"


async def _parse_lines() -> int:
    gateway = GatewayBuilder(Settings.from_env()).build()
    try:
        client = await gateway.start_nlu()
        for line in sys.stdin:
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            try:
                result = await client.parse(text)
            except NluUnavailable as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print(json.dumps(result.model_dump(mode="json", exclude_none=True), ensure_ascii=False), flush=True)
    finally:
        with contextlib.suppress(Exception):
            await gateway.stop()
    return 0


async def _evaluate(
    path: Path,
    threshold: float | None,
    today: date | None,
    png: Path | None,
    json_out: Path | None,
    errors_shown: int = 25,
) -> int:
    examples = load_test_examples(path)  # fails early, before Rasa starts, on a bad file
    if not examples:
        raise RasaDataError(f"{path}: no intent examples")
    settings = Settings.from_env()
    threshold = settings.nlu.confidence_threshold if threshold is None else threshold
    day = today or reference_date(path) or today_in(settings.shop.timezone)()
    gateway = GatewayBuilder(settings).build()
    try:
        # The threshold is applied afterwards, so one pass also gives the calibration table.
        client = UnderstandingClient(await gateway.start_rasa(), confidence_threshold=0.0, today=lambda: day)
        try:
            with tqdm(total=len(examples), desc="parsing", unit="msg", file=sys.stderr) as bar:
                report = await evaluate(client, examples, threshold=threshold, on_progress=lambda *_: bar.update())
        finally:
            await client.close()
    finally:
        await gateway.stop()
    print(f"{path}: relative dates against {day.isoformat()}")
    print(format_report(report, errors_shown))
    image = write_confusion_png(report, png or settings.var_dir / "nlu-eval" / "confusion.png")
    print(f"\nconfusion matrix: {image}")
    if json_out is not None:
        await asyncio.to_thread(_write_json, json_out, report.as_dict(errors_shown))
        print(f"report: {json_out}")
    return 0


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


async def _seed(path: Path) -> int:
    gateway = GatewayBuilder(Settings.from_env()).build()
    try:
        count = await gateway.seed_orders(path)
    finally:
        await gateway.stop()
    print(f"seeded {count} orders from {path}")
    return 0


async def _merge_customers(source: str, target: str, *, reason: str, actor: str) -> int:
    gateway = GatewayBuilder(Settings.from_env()).build()
    try:
        store = await gateway.start_store()
        merged = await store.merge_customers(source, target, actor=f"cli:{actor}", reason=reason)
    finally:
        await gateway.stop()
    print(json.dumps({"customer": merged.model_dump(mode="json")}, ensure_ascii=False))
    return 0


async def _peak_report(first: date, last: date, *, as_json: bool, csv_path: Path | None) -> int:
    if first > last:
        print("error: --from must not be after --to", file=sys.stderr)
        return 2
    zone = ZoneInfo(Settings.from_env().shop.timezone)
    async with _database(read_only=True) as db:
        report = await peak_report(db, first, last, zone)
    if csv_path is not None:
        with csv_path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(("section", "key", "field", "value"))
            writer.writerows(csv_rows(report))
    print(json.dumps(report, ensure_ascii=False) if as_json else format_text(report))
    return 0


@contextlib.asynccontextmanager
async def _database(*, read_only: bool = False) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """The gateway's database (embedded nx-27017 unless MONGODB_URI is set), for one command.
    ``read_only``: a configured store is opened as it is (no index creation, no migration), so a
    read-only account (``deploy/mongodb/init-replica-set.js``) can run reports."""
    settings = Settings.from_env()
    if read_only and settings.store.mongodb_uri:
        store = ConversationStore.from_uri(settings.store.mongodb_uri, settings.store.database)
        try:
            yield store.db
        finally:
            await store.close()
        return
    gateway = GatewayBuilder(settings).build()
    try:
        yield (await gateway.start_store()).db
    finally:
        await gateway.stop()


@contextlib.asynccontextmanager
async def _backoffice() -> AsyncIterator[Backoffice]:
    """The backoffice over the gateway's store (embedded nx-27017 unless MONGODB_URI is set)."""
    gateway = GatewayBuilder(Settings.from_env()).build()
    try:
        await gateway.start_store()
        assert gateway.backoffice is not None
        yield gateway.backoffice
    finally:
        await gateway.stop()


async def _end_console_sessions(backoffice: Backoffice, staff_id: str) -> int:
    """Whoever knew the old password may be signed in with it: their console sessions end, as
    when an admin sets the password in the console."""
    return await SessionStore(backoffice.store.db).close_all(staff_id)


async def _ocr(images: list[Path], engine: str, *, as_json: bool, order_check: bool) -> int:
    if not order_check:
        return await read_files(images, engine=engine, as_json=as_json)
    gateway = GatewayBuilder(Settings.from_env()).build()
    try:
        await gateway.start_store()
        assert gateway.orders is not None
        return await read_files(images, engine=engine, as_json=as_json, check=OrderCheck(gateway.orders))
    finally:
        await gateway.stop()


if __name__ == "__main__":
    sys.exit(main())
