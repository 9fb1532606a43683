"""Polar's official Python SDK (PyPI `polar-sdk`) against polar-emulator.

    python check.py BASE_URL [VERSION ...]

Drives every checkout-link operation of the SDK, plus the product, discount,
organisation and order reads (orders bought through a link with the emulator's
buy control), against an emulator serving the demo seed
(examples/emulator-seed.yaml), once per API version (default: 2026-10, 2027-01
and 2026-04; each is its own module of the SDK, `polar.v2026_10` and so on).

A call passes only when the SDK hands back its typed model (or raises its typed
error) without a deserialisation error, and the values are what the call asked
for. Every failure is one line on stdout; the last line is the summary
`polar-sdk X.Y.Z: N calls, N passed` (`, N failed` when some failed), and the
exit status is non-zero when anything failed.

Each pass starts from `POST /__emulator/reset`, so the emulator must be one this
script may reset (hack/polar-sdk.sh starts its own).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import types
import typing
import urllib.request

import polar
from polar import PolarClientError, PolarDeserializationError, PolarError

# The demo seed (examples/emulator-seed.yaml; emulator/README.md lists it).
ACME = "11111111-1111-4111-8111-111111111111"
GLOBEX = "22222222-2222-4222-8222-222222222222"
NOBODY = "44444444-4444-4444-8444-444444444444"  # no organisation has this id
ACME_TOKEN = "polar_oat_AcmeDemoWriteToken00000000000000000013Difp9"
ACME_READ_TOKEN = "polar_oat_AcmeDemoReadOnlyToken000000000000000238RYdr"
GLOBEX_TOKEN = "polar_oat_GlobexDemoWriteToken000000000000000033fE7W1"
USER_TOKEN = "polar_pat_DemoUserPersonalToken00000000000000040CRsYF"
BAD_TOKEN = "polar_oat_NotASeededToken0000000000000000000000000000"

EBOOK = "a1000000-0000-4000-8000-000000000001"
MONTHLY = "a1000000-0000-4000-8000-000000000002"
YEARLY = "a1000000-0000-4000-8000-000000000003"
TEAM = "a1000000-0000-4000-8000-000000000004"
ARCHIVED = "a1000000-0000-4000-8000-000000000005"
CONSULTING = "a1000000-0000-4000-8000-000000000007"
CREDITS = "a1000000-0000-4000-8000-000000000008"
GLOBEX_WIDGET = "a2000000-0000-4000-8000-000000000001"
EBOOK_PRICE = "b1000000-0000-4000-8000-000000000001"
LAUNCH20 = "d1000000-0000-4000-8000-000000000001"
TEAM5 = "d1000000-0000-4000-8000-000000000002"
GLOBEX10 = "d2000000-0000-4000-8000-000000000001"
GLOBEX_EBOOK = "a2000000-0000-4000-8000-000000000002"
GLOBEX_MONTHLY = "a2000000-0000-4000-8000-000000000003"
GLOBEX_LAUNCH20 = "d2000000-0000-4000-8000-000000000002"
ACME_PRODUCTS = 8

VERSIONS = ["2026-10", "2027-01", "2026-04"]
SUCCESS_URL = "https://example.com/thanks?checkout_id={CHECKOUT_ID}"
METADATA = {"campaign": "spring", "count": 3, "ratio": 0.25, "vip": True}


class Abort(Exception):
    """A step the rest of the pass needs did not work."""


# ---------------------------------------------------------------- helpers


def describe(error: BaseException) -> str:
    """adaptix's load error as one line: where and what, for the first leaves."""
    leaves: list[str] = []

    def walk(e: BaseException, trail: list) -> None:
        trail = trail + list(getattr(e, "_adaptix_struct_trail", ()))
        subs = getattr(e, "exceptions", None)
        if subs:
            for sub in subs:
                walk(sub, trail)
            return
        where = "".join(f"[{t!r}]" if isinstance(t, int) else f".{t}" for t in trail)
        what = type(e).__name__
        for attr in ("fields", "expected_type", "input_value"):
            if hasattr(e, attr):
                value = repr(getattr(e, attr))
                what += f" {attr}={value[:120]}"
                break
        leaves.append(f"at {where or '.'}: {what}")

    walk(error, [])
    shown = "; ".join(leaves[:3])
    if len(leaves) > 3:
        shown += f"; ... ({len(leaves)} problems)"
    return shown


def is_a(value: object, tp: object) -> bool:
    """isinstance for the SDK's models, including its union aliases."""
    if tp is None or tp is type(None):
        return value is None
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(is_a(value, a) for a in args)
    return isinstance(value, tp)  # type: ignore[arg-type]


def name_of(tp: object) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def eq(actual: object, expected: object, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: got {actual!r}, want {expected!r}")


def ok(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def control(base: str, method: str, path: str, body: object | None = None) -> object:
    """The emulator's test controls (no auth)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}/__emulator/{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


class Runner:
    def __init__(self) -> None:
        self.calls = 0
        self.passed = 0
        self.failures: list[str] = []
        self.version = ""

    def fail(self, what: str, why: str) -> None:
        line = f"FAIL [{self.version}] {what}: {why}"
        self.failures.append(line)
        print(line, flush=True)

    def call(
        self,
        what: str,
        fn: typing.Callable[[], object],
        *,
        returns: object = None,
        raises: type[BaseException] | None = None,
        status: int | None = None,
        then: typing.Callable[[typing.Any], object] | None = None,
    ) -> typing.Any:
        """One SDK call: it must return `returns` (a model or alias) or raise
        exactly `raises` (with `status`), and `then` must hold on the result."""
        self.calls += 1
        try:
            value: typing.Any = fn()
        except BaseException as e:  # noqa: BLE001 - every outcome is judged below
            if isinstance(e, KeyboardInterrupt):
                raise
            if raises is not None and type(e) is raises:
                if status is not None and getattr(e, "status_code", None) != status:
                    self.fail(what, f"{type(e).__name__} with status {e.status_code}, want {status}")  # type: ignore[attr-defined]
                    return None
                value = e
            elif isinstance(e, PolarDeserializationError):
                self.fail(what, f"the SDK could not load the response: {describe(e.error)}")
                return None
            elif isinstance(e, PolarError):
                self.fail(what, f"unexpected {type(e).__name__}: {str(e)[:300]}")
                return None
            else:
                self.fail(what, f"{type(e).__name__}: {e}")
                return None
        else:
            if raises is not None:
                self.fail(what, f"expected {raises.__name__}, got {type(value).__name__}")
                return None
            if not is_a(value, returns):
                self.fail(what, f"returned {type(value).__name__}, want {name_of(returns)}")
                return None
        # A result that loaded but holds wrong values is a failure; later steps
        # may still use it.
        if then is not None:
            try:
                then(value)
            except AssertionError as e:
                self.fail(what, str(e))
                return value
            except Exception as e:  # noqa: BLE001
                self.fail(what, f"checking the result: {type(e).__name__}: {e}")
                return value
        self.passed += 1
        return value

    def need(self, value: typing.Any, what: str) -> typing.Any:
        if value is None:
            raise Abort(what)
        return value


def all_of(*checks: typing.Callable[[typing.Any], object]) -> typing.Callable[[typing.Any], None]:
    def run(value: typing.Any) -> None:
        for c in checks:
            c(value)

    return run


# ---------------------------------------------------------------- one pass


def run_pass(base: str, version: str, r: Runner) -> None:
    r.version = version
    pkg = "polar.v" + version.replace("-", "_")
    sdk = importlib.import_module(pkg)
    out = importlib.import_module(pkg + ".outputs")
    err = importlib.import_module(pkg + ".errors")
    eq(sdk.Polar.version, version, f"{pkg}.Polar.version")
    tiered = version >= "2027-01"

    control(base, "POST", "reset")
    control(base, "DELETE", "requests")

    def client(token: str, organization_id: str | None = None) -> typing.Any:
        return sdk.Polar(token, base_url=base, organization_id=organization_id)

    acme = client(ACME_TOKEN)
    links = acme.checkout_links

    def product_ids(link: typing.Any) -> list[str]:
        return [p.id for p in link.products]

    def item_ids(page: typing.Any) -> list[str]:
        return [i.id for i in page.items]

    def seat_price(price: typing.Any) -> None:
        ok(is_a(price, out.ProductPriceSeatBased), f"seat price is {type(price).__name__}")
        if tiered:
            ok(not hasattr(price, "seat_tiers"), "2027-01 has no seat_tiers")
            eq(price.tiers.type, "volume", "tiers.type")
            eq(
                [(t.bound, t.unit_amount) for t in price.tiers.tiers],
                [(10, "800"), (50, "600")],
                "tiers",
            )
            eq((price.minimum_units, price.maximum_units), (1, 50), "units range")
        else:
            st = price.seat_tiers
            eq(st.seat_tier_type, "volume", "seat_tier_type")
            eq(
                [(t.min_seats, t.max_seats, t.price_per_seat) for t in st.tiers],
                [(1, 10, 800), (11, 50, 600)],
                "seat tiers",
            )
            eq((st.minimum_seats, st.maximum_seats), (1, 50), "seats range")

    def unit_price(price: typing.Any) -> None:
        ok(is_a(price, out.ProductPriceUnitBased), f"unit price is {type(price).__name__}")
        eq(price.tiers.type, "volume", "tiers.type")
        eq([(t.bound, t.unit_amount) for t in price.tiers.tiers], [(1000, "10")], "tiers")
        eq((price.minimum_units, price.maximum_units), (1, 1000), "units range")

    # -- create
    one = r.call(
        "checkout_links.create(one product, defaults)",
        lambda: links.create(payment_processor="stripe", products=[EBOOK]),
        returns=out.CheckoutLink,
        then=lambda l: (
            eq(product_ids(l), [EBOOK], "products"),
            eq(l.organization_id, ACME, "organization_id"),
            eq((l.allow_discount_codes, l.require_billing_address), (True, False), "flags"),
            eq((l.label, l.discount_id, l.discount, l.seats, l.units), (None,) * 5, "unset"),
            eq((l.success_url, l.return_url, l.trial_interval), (None,) * 3, "unset urls"),
            eq(l.metadata, {}, "metadata"),
            eq(l.modified_at, None, "modified_at"),
            eq(l.payment_processor, "stripe", "payment_processor"),
            ok(l.client_secret.startswith("polar_cl_") and len(l.client_secret) == 52, "client_secret"),
            ok(l.url.endswith(l.client_secret), f"url {l.url}"),
            ok(is_a(l.products[0].prices[0], out.ProductPriceFixed), "fixed price"),
        ),
    )
    full = r.call(
        "checkout_links.create(several products, every field)",
        lambda: links.create(
            payment_processor="stripe",
            products=[MONTHLY, YEARLY],
            label="SDK every field",
            allow_discount_codes=False,
            require_billing_address=True,
            discount_id=LAUNCH20,
            metadata=METADATA,
            success_url=SUCCESS_URL,
            return_url="https://example.com/back",
            trial_interval="week",
            trial_interval_count=2,
        ),
        returns=out.CheckoutLink,
        then=lambda l: (
            eq(product_ids(l), [MONTHLY, YEARLY], "products"),
            eq(l.label, "SDK every field", "label"),
            eq((l.allow_discount_codes, l.require_billing_address), (False, True), "flags"),
            eq(l.discount_id, LAUNCH20, "discount_id"),
            ok(is_a(l.discount, out.DiscountPercentageOnceForeverDurationBase), f"discount is {type(l.discount).__name__}"),
            eq(l.discount.basis_points, 2000, "discount.basis_points"),
            eq(l.metadata, METADATA, "metadata"),
            eq({k: type(v) for k, v in l.metadata.items()}, {k: type(v) for k, v in METADATA.items()}, "metadata types"),
            eq(l.success_url, SUCCESS_URL, "success_url keeps {CHECKOUT_ID}"),
            eq(l.return_url, "https://example.com/back", "return_url"),
            eq((l.trial_interval, l.trial_interval_count), ("week", 2), "trial"),
            ok(all(p.is_recurring for p in l.products), "recurring products"),
        ),
    )
    team = r.call(
        "checkout_links.create(seat-based product, seats)",
        lambda: links.create(payment_processor="stripe", products=[TEAM], seats=5, discount_id=TEAM5),
        returns=out.CheckoutLink,
        then=lambda l: (
            eq(l.seats, 5, "seats"),
            seat_price(l.products[0].prices[0]),
            ok(is_a(l.discount, out.DiscountFixedOnceForeverDurationBase), f"discount is {type(l.discount).__name__}"),
            eq(l.discount.amounts, {"usd": 500}, "discount.amounts"),
        ),
    )
    credits = r.call(
        "checkout_links.create(unit-based product, units)",
        lambda: links.create(payment_processor="stripe", products=[CREDITS], units=100, label="credits"),
        returns=out.CheckoutLink,
        then=lambda l: (eq(l.units, 100, "units"), unit_price(l.products[0].prices[0])),
    )
    by_product = r.call(
        "checkout_links.create(product_id, deprecated)",
        lambda: links.create(payment_processor="stripe", product_id=YEARLY, label="by product"),
        returns=out.CheckoutLink,
        then=lambda l: eq(product_ids(l), [YEARLY], "products"),
    )
    r.call(
        "checkout_links.create(product_price_id, deprecated)",
        lambda: links.create(payment_processor="stripe", product_price_id=EBOOK_PRICE),
        returns=out.CheckoutLink,
        then=lambda l: eq(product_ids(l), [EBOOK], "products"),
    )
    one, full, team, credits, by_product = (
        r.need(x, "a create failed") for x in (one, full, team, credits, by_product)
    )
    created = 6

    # -- get
    r.call(
        "checkout_links.get",
        lambda: links.get(full.id),
        returns=out.CheckoutLink,
        then=lambda l: eq(l, full, "the link as created"),
    )

    # -- list: filters, sorting, the SDK's pager
    r.call(
        "checkout_links.list(organization_id)",
        lambda: links.list(organization_id=ACME, limit=100),
        returns=out.ListResourceCheckoutLink,
        then=lambda p: (
            eq(p.pagination.total_count, created, "total_count"),
            eq(item_ids(p)[:2], [one.id, full.id], "created_at order"),
            ok(all(is_a(i, out.CheckoutLink) for i in p.items), "items are CheckoutLink"),
        ),
    )
    r.call(
        "checkout_links.list(organization_id of another organisation)",
        lambda: links.list(organization_id=GLOBEX),
        returns=out.ListResourceCheckoutLink,
        then=lambda p: eq((p.items, p.pagination.total_count, p.pagination.max_page), ([], 0, 0), "empty"),
    )
    r.call(
        "checkout_links.list(product_id)",
        lambda: links.list(product_id=TEAM),
        returns=out.ListResourceCheckoutLink,
        then=lambda p: eq(item_ids(p), [team.id], "links with Team"),
    )
    r.call(
        "checkout_links.list(product_id, two values)",
        lambda: links.list(product_id=[MONTHLY, YEARLY]),
        returns=out.ListResourceCheckoutLink,
        then=lambda p: (
            eq(item_ids(p), [full.id, by_product.id], "links with either"),
            eq(p.pagination.total_count, 3, "total_count counts (link, product) rows"),
        ),
    )
    r.call(
        "checkout_links.list(sorting=-created_at)",
        lambda: links.list(sorting=["-created_at"], limit=1),
        returns=out.ListResourceCheckoutLink,
        then=lambda p: (
            ok(item_ids(p)[0] not in (one.id, full.id), "newest first"),
            eq(p.pagination.max_page, created, "max_page"),
        ),
    )
    r.call(
        "checkout_links.list(sorting=label,-created_at)",
        lambda: links.list(sorting=["label", "-created_at"], limit=100),
        returns=out.ListResourceCheckoutLink,
        then=lambda p: eq(
            [i.label for i in p.items],
            ["SDK every field", "by product", "credits", None, None, None],
            "labels (byte order, NULLs last)",
        ),
    )
    before = control(base, "GET", "counters").get("GET /v1/checkout-links/", 0)  # type: ignore[union-attr]
    r.call(
        "checkout_links.iter_list(limit=2): the SDK's pager",
        lambda: list(links.iter_list(limit=2)),
        returns=list,
        then=lambda items: (
            eq(len(items), created, "items over all pages"),
            eq(items[0].id, one.id, "first"),
            ok(all(is_a(i, out.CheckoutLink) for i in items), "items are CheckoutLink"),
            eq(
                control(base, "GET", "counters").get("GET /v1/checkout-links/", 0) - before,  # type: ignore[union-attr]
                3,
                "pages fetched",
            ),
        ),
    )

    # -- update each field, with explicit nulls
    def update(what: str, link: typing.Any, check: typing.Callable[[typing.Any], object], **body: typing.Any) -> None:
        r.call(
            f"checkout_links.update({what})",
            lambda: links.update(link.id, **body),
            returns=out.CheckoutLink,
            then=all_of(check, lambda l: ok(l.modified_at is not None, "modified_at set")),
        )

    update("label", full, lambda l: eq(l.label, "renamed", "label"), label="renamed")
    update("label=null", full, lambda l: eq(l.label, None, "label"), label=None)
    update("allow_discount_codes", full, lambda l: eq(l.allow_discount_codes, True, "flag"), allow_discount_codes=True)
    update("require_billing_address", full, lambda l: eq(l.require_billing_address, False, "flag"), require_billing_address=False)
    update("discount_id=null", full, lambda l: eq((l.discount_id, l.discount), (None, None), "discount"), discount_id=None)
    update("discount_id", full, lambda l: eq(l.discount.id, LAUNCH20, "discount"), discount_id=LAUNCH20)
    update("success_url", full, lambda l: eq(l.success_url, "https://example.com/done", "success_url"), success_url="https://EXAMPLE.com/done")
    update("success_url=null", full, lambda l: eq(l.success_url, None, "success_url"), success_url=None)
    update("return_url", full, lambda l: eq(l.return_url, "https://example.com/", "return_url"), return_url="https://example.com")
    update("return_url=null", full, lambda l: eq(l.return_url, None, "return_url"), return_url=None)
    update("metadata (replaced)", full, lambda l: eq(l.metadata, {"only": 1.5}, "metadata"), metadata={"only": 1.5})
    update("metadata={}", full, lambda l: eq(l.metadata, {}, "metadata"), metadata={})
    update("trial=null", full, lambda l: eq((l.trial_interval, l.trial_interval_count), (None, None), "trial"), trial_interval=None, trial_interval_count=None)
    update("trial", full, lambda l: eq((l.trial_interval, l.trial_interval_count), ("month", 3), "trial"), trial_interval="month", trial_interval_count=3)
    update("products (recurring: trial kept)", full, lambda l: (eq(product_ids(l), [YEARLY], "products"), eq(l.trial_interval, "month", "trial")), products=[YEARLY])
    update("products (one-time: trial cleared)", full, lambda l: (eq(product_ids(l), [EBOOK, CONSULTING], "products"), eq(l.trial_interval, None, "trial")), products=[EBOOK, CONSULTING])
    update("seats", team, lambda l: eq(l.seats, 10, "seats"), seats=10)
    update("seats=null", team, lambda l: eq(l.seats, None, "seats"), seats=None)
    update("units", credits, lambda l: eq(l.units, 500, "units"), units=500)
    update("units=null", credits, lambda l: eq(l.units, None, "units"), units=None)

    # -- delete, then 404s
    r.call("checkout_links.delete", lambda: links.delete(one.id), returns=None)
    not_found = all_of(
        lambda e: eq(e.error.error, "ResourceNotFound", "error"),
        lambda e: ok(is_a(e.error, out.ResourceNotFound), "typed body"),
    )
    r.call("checkout_links.get(deleted)", lambda: links.get(one.id), raises=err.ResourceNotFound, status=404, then=not_found)
    r.call("checkout_links.update(deleted)", lambda: links.update(one.id, label="x"), raises=err.ResourceNotFound, status=404, then=not_found)
    r.call("checkout_links.delete(deleted)", lambda: links.delete(one.id), raises=err.ResourceNotFound, status=404, then=not_found)
    r.call(
        "checkout_links.list (deleted link gone)",
        lambda: links.list(limit=100),
        returns=out.ListResourceCheckoutLink,
        then=lambda p: ok(one.id not in item_ids(p), "deleted link listed"),
    )

    # -- 422s
    def invalid(kind: str, msg: str | None = None) -> typing.Callable[[typing.Any], None]:
        def check(e: typing.Any) -> None:
            ok(is_a(e.error, out.HTTPValidationError), "typed body")
            details = e.error.detail or []
            ok(all(is_a(d, out.ValidationError) for d in details), "ValidationError items")
            ok(any(d.type == kind for d in details), f"no {kind} in {[d.type for d in details]}")
            if msg is not None:
                ok(any(d.msg == msg for d in details), f"no {msg!r} in {[d.msg for d in details]}")

        return check

    r.call("checkout_links.create(products=[]) -> 422", lambda: links.create(payment_processor="stripe", products=[]), raises=err.HTTPValidationError, status=422, then=invalid("too_short"))
    r.call("checkout_links.create(archived product) -> 422", lambda: links.create(payment_processor="stripe", products=[ARCHIVED]), raises=err.HTTPValidationError, status=422, then=invalid("value_error", "Product is archived."))
    r.call("checkout_links.create(ftp success_url) -> 422", lambda: links.create(payment_processor="stripe", products=[EBOOK], success_url="ftp://example.com"), raises=err.HTTPValidationError, status=422, then=invalid("url_scheme"))
    r.call("checkout_links.update(seats on one-time products) -> 422", lambda: links.update(full.id, seats=3), raises=err.HTTPValidationError, status=422, then=invalid("value_error", "Seats can only be preconfigured when all products use seat-based pricing."))
    r.call("checkout_links.list(limit=0) -> 422", lambda: links.list(limit=0), raises=err.HTTPValidationError, status=422, then=invalid("greater_than"))
    r.call("checkout_links.get(not a UUID) -> 422", lambda: links.get("not-a-uuid"), raises=err.HTTPValidationError, status=422, then=invalid("uuid_parsing"))

    # -- tokens
    def oauth_error(code: str) -> typing.Callable[[typing.Any], None]:
        return lambda e: eq(json.loads(e.error)["error"], code, "error")

    r.call("checkout_links.list(unknown token) -> 401", lambda: client(BAD_TOKEN).checkout_links.list(), raises=PolarClientError, status=401, then=oauth_error("invalid_token"))
    r.call("checkout_links.create(read-only token) -> 403", lambda: client(ACME_READ_TOKEN).checkout_links.create(payment_processor="stripe", products=[EBOOK]), raises=PolarClientError, status=403, then=oauth_error("insufficient_scope"))

    # -- products
    r.call(
        "products.list",
        lambda: acme.products.list(organization_id=ACME, limit=100),
        returns=out.ListResourceProduct,
        then=lambda p: (
            eq(p.pagination.total_count, ACME_PRODUCTS, "total_count"),
            eq(item_ids(p)[0], CREDITS, "newest first"),
            eq({i.id: i.is_deletable for i in p.items}[TEAM], False, "Team is_deletable (a discount is restricted to it)"),
            eq({i.id: i.is_deletable for i in p.items}[EBOOK], True, "Ebook is_deletable"),
        ),
    )
    r.call(
        "products.list(query, is_recurring)",
        lambda: acme.products.list(query="pro", is_recurring=True, sorting=["name"]),
        returns=out.ListResourceProduct,
        then=lambda p: eq(item_ids(p), [MONTHLY, YEARLY], "products"),
    )
    r.call(
        "products.list(is_archived, visibility)",
        lambda: acme.products.list(is_archived=False, visibility=["private"]),
        returns=out.ListResourceProduct,
        then=lambda p: eq(item_ids(p), [CONSULTING], "products"),
    )
    r.call(
        "products.iter_list(limit=3): the SDK's pager",
        lambda: list(acme.products.iter_list(limit=3)),
        returns=list,
        then=lambda items: (
            eq(len(items), ACME_PRODUCTS, "items over all pages"),
            ok(all(is_a(i, out.Product) for i in items), "items are Product"),
        ),
    )
    r.call("products.get(seat-based)", lambda: acme.products.get(TEAM), returns=out.Product, then=lambda p: (eq(p.is_deletable, False, "is_deletable"), seat_price(p.prices[0])))
    r.call("products.get(unit-based)", lambda: acme.products.get(CREDITS), returns=out.Product, then=lambda p: (eq(p.is_deletable, True, "is_deletable"), unit_price(p.prices[0])))
    r.call("products.get(archived)", lambda: acme.products.get(ARCHIVED), returns=out.Product, then=lambda p: eq(p.is_archived, True, "is_archived"))
    r.call("products.get(another organisation's) -> 404", lambda: acme.products.get(GLOBEX_WIDGET), raises=err.ResourceNotFound, status=404, then=not_found)

    r.call(
        "products.list(metadata: one key, two values)",
        lambda: acme.products.list(metadata={"sku": ["ebook", "team"]}),
        returns=out.ListResourceProduct,
        then=lambda p: (eq(item_ids(p), [TEAM, EBOOK], "products"), eq(p.items[1].metadata, {"sku": "ebook"}, "metadata")),
    )
    r.call(
        "products.list(metadata: two keys, an integer value)",
        lambda: acme.products.list(metadata={"plan": "pro", "months": 12}),
        returns=out.ListResourceProduct,
        then=lambda p: (eq(item_ids(p), [YEARLY], "products"), eq(p.items[0].metadata["months"], 12, "an int")),
    )
    r.call(
        "products.list(metadata, Globex token): Globex's own Ebook and Pro Monthly",
        lambda: client(GLOBEX_TOKEN).products.list(metadata={"sku": ["ebook", "pro-monthly"]}),
        returns=out.ListResourceProduct,
        then=lambda p: (eq(item_ids(p), [GLOBEX_MONTHLY, GLOBEX_EBOOK], "products"), eq([i.name for i in p.items], ["Pro Monthly", "Ebook"], "names")),
    )

    # -- discounts
    r.call(
        "discounts.list",
        lambda: acme.discounts.list(),
        returns=out.ListResourceDiscount,
        then=lambda p: (
            eq(sorted(item_ids(p)), [LAUNCH20, TEAM5], "discounts"),
            ok(all(is_a(i, out.Discount) for i in p.items), "items are Discount"),
        ),
    )
    r.call("discounts.list(query)", lambda: acme.discounts.list(query="launch"), returns=out.ListResourceDiscount, then=lambda p: eq(item_ids(p), [LAUNCH20], "discounts"))
    r.call(
        "discounts.list(query=code, personal token): one LAUNCH20 per organisation",
        lambda: client(USER_TOKEN).discounts.list(query="LAUNCH20", sorting=["created_at"]),
        returns=out.ListResourceDiscount,
        then=lambda p: (
            eq(item_ids(p), [LAUNCH20, GLOBEX_LAUNCH20], "discounts"),
            eq({i.code for i in p.items}, {"LAUNCH20"}, "codes"),
            eq({(i.max_redemptions, i.redemptions_count, i.starts_at, i.ends_at) for i in p.items}, {(None, 0, None, None)}, "limits"),
        ),
    )
    r.call(
        "discounts.get(fixed, restricted)",
        lambda: acme.discounts.get(TEAM5),
        returns=out.DiscountFixedOnceForeverDuration,
        then=lambda d: (
            eq(d.amounts, {"usd": 500}, "amounts"),
            eq([p.id for p in d.products], [TEAM], "products"),
            ok(is_a(d.products[0], out.DiscountProduct), "DiscountProduct"),
        ),
    )
    r.call("discounts.get(percentage)", lambda: acme.discounts.get(LAUNCH20), returns=out.DiscountPercentageOnceForeverDuration, then=lambda d: eq((d.basis_points, d.products), (2000, []), "discount"))
    r.call("discounts.get(another organisation's) -> 404", lambda: acme.discounts.get(GLOBEX10), raises=err.ResourceNotFound, status=404, then=not_found)

    # -- organisations
    r.call("organizations.list", lambda: acme.organizations.list(), returns=out.ListResourceOrganization, then=lambda p: eq(item_ids(p), [ACME], "organisations"))
    r.call("organizations.get", lambda: acme.organizations.get(ACME), returns=out.Organization, then=lambda o: eq(o.slug, "acme", "slug"))

    # -- orders (bought through a link with the emulator's control)
    shop = r.need(
        r.call(
            "checkout_links.create(for orders)",
            lambda: links.create(payment_processor="stripe", products=[EBOOK, MONTHLY], discount_id=LAUNCH20, metadata={"campaign": "sdk", "wave": 2}),
            returns=out.CheckoutLink,
        ),
        "the orders link",
    )
    created += 1
    buy = f"checkout-links/{shop.id}/buy"
    first = control(base, "POST", buy, {"query": {"utm_source": "newsletter", "campaign": "ignored"}})
    second = control(base, "POST", buy, {"product_id": MONTHLY, "query": {"utm_source": "ads", "reference_id": "r1"}})
    third = control(base, "POST", buy, {})
    control(base, "POST", f"orders/{third['id']}/refund", {"amount": 100})  # type: ignore[index]
    bought = [first["id"], second["id"], third["id"]]  # type: ignore[index]
    orders = acme.orders
    r.call(
        "orders.list(metadata)",
        lambda: orders.list(metadata={"campaign": "sdk"}, sorting=["created_at"]),
        returns=out.ListResourceOrder,
        then=lambda p: (
            eq(item_ids(p), bought, "orders"),
            ok(all(is_a(i, out.Order) for i in p.items), "items are Order"),
            eq(p.items[0].metadata, {"campaign": "sdk", "wave": 2, "utm_source": "newsletter"}, "the link's metadata wins"),
            eq((p.items[0].discount_id, p.items[0].discount_amount, p.items[0].net_amount), (LAUNCH20, 380, 1520), "the link's discount"),
            eq([i.status for i in p.items], ["paid", "paid", "partially_refunded"], "statuses"),
            eq(p.items[2].refunded_amount, 100, "refunded_amount"),
        ),
    )
    r.call(
        "orders.list(metadata: one key, two values; an integer)",
        lambda: orders.list(metadata={"utm_source": ["newsletter", "ads"], "wave": 2}, sorting=["-created_at"]),
        returns=out.ListResourceOrder,
        then=lambda p: eq(item_ids(p), [bought[1], bought[0]], "orders"),
    )
    r.call(
        "orders.iter_list(limit=1, metadata): the SDK's pager",
        lambda: list(orders.iter_list(limit=1, metadata={"campaign": "sdk"})),
        returns=list,
        then=lambda items: (
            eq([i.id for i in items], list(reversed(bought)), "items over all pages, newest first"),
            ok(all(is_a(i, out.Order) for i in items), "items are Order"),
        ),
    )
    r.call(
        "orders.list(product_id, product_billing_type, status)",
        lambda: orders.list(product_id=MONTHLY, product_billing_type="recurring", status=["paid"]),
        returns=out.ListResourceOrder,
        then=lambda p: (eq(item_ids(p), [bought[1]], "orders"), eq(p.items[0].billing_reason, "subscription_create", "billing_reason")),
    )
    r.call(
        "orders.list(checkout_id, created_after)",
        lambda: orders.list(checkout_id=first["checkout_id"], created_after="2020-01-01T00:00:00Z"),  # type: ignore[index]
        returns=out.ListResourceOrder,
        then=lambda p: eq(item_ids(p), [bought[0]], "orders"),
    )
    r.call(
        "orders.get(subscription order)",
        lambda: orders.get(bought[1]),
        returns=out.Order,
        then=lambda o: (
            eq(o.product_id, MONTHLY, "product_id"),
            ok(is_a(o.product, out.OrderProduct), f"product is {type(o.product).__name__}"),
            ok(is_a(o.customer, out.OrderCustomer), "customer"),
            ok(is_a(o.subscription, out.OrderSubscription), "subscription"),
            eq(o.subscription.id, o.subscription_id, "subscription_id"),
            eq(o.metadata, {"campaign": "sdk", "wave": 2, "reference_id": "r1", "utm_source": "ads"}, "metadata"),
            eq((o.checkout_id, o.items[0].product_price_id), (second["checkout_id"], "b1000000-0000-4000-8000-000000000002"), "checkout and price"),  # type: ignore[index]
        ),
    )
    r.call("orders.get(unknown) -> 404", lambda: orders.get(NOBODY), raises=err.ResourceNotFound, status=404, then=not_found)
    r.call("orders.list(without orders:read) -> 403", lambda: client(GLOBEX_TOKEN).orders.list(), raises=PolarClientError, status=403, then=oauth_error("insufficient_scope"))
    r.call("orders.list(created_after not a datetime) -> 422", lambda: orders.list(created_after="soon"), raises=err.HTTPValidationError, status=422, then=invalid("datetime_from_date_parsing"))

    # -- Polar-Organization (the SDK's organization_id)
    globex_link = r.need(
        r.call(
            "checkout_links.create(Globex token)",
            lambda: client(GLOBEX_TOKEN).checkout_links.create(payment_processor="stripe", products=[GLOBEX_WIDGET]),
            returns=out.CheckoutLink,
        ),
        "the Globex link",
    )
    live = created - 1
    user = client(USER_TOKEN)
    r.call(
        "personal token: checkout_links.list (both organisations)",
        lambda: user.checkout_links.list(limit=100),
        returns=out.ListResourceCheckoutLink,
        then=lambda p: eq(p.pagination.total_count, live + 1, "total_count"),
    )
    user_acme = client(USER_TOKEN, organization_id=ACME)
    r.call(
        "personal token, Polar-Organization Acme: checkout_links.list",
        lambda: user_acme.checkout_links.list(limit=100),
        returns=out.ListResourceCheckoutLink,
        then=lambda p: (
            eq(p.pagination.total_count, live, "total_count"),
            ok(all(i.organization_id == ACME for i in p.items), "only Acme's links"),
        ),
    )
    r.call("personal token, Polar-Organization Acme: checkout_links.get(Globex link) -> 404", lambda: user_acme.checkout_links.get(globex_link.id), raises=err.ResourceNotFound, status=404, then=not_found)
    r.call("personal token, Polar-Organization Acme: products.list", lambda: user_acme.products.list(limit=100), returns=out.ListResourceProduct, then=lambda p: eq(p.pagination.total_count, ACME_PRODUCTS, "Acme's products only"))
    r.call("personal token, Polar-Organization Acme: organizations.list", lambda: user_acme.organizations.list(), returns=out.ListResourceOrganization, then=lambda p: eq(item_ids(p), [ACME], "organisations"))
    r.call(
        "personal token, Polar-Organization Acme: checkout_links.create(Globex product) -> 422",
        lambda: user_acme.checkout_links.create(payment_processor="stripe", products=[GLOBEX_WIDGET]),
        raises=err.HTTPValidationError,
        status=422,
        then=invalid("value_error", "Product does not exist."),
    )
    r.call(
        "personal token, Polar-Organization Acme: checkout_links.create",
        lambda: user_acme.checkout_links.create(payment_processor="stripe", products=[EBOOK]),
        returns=out.CheckoutLink,
        then=lambda l: eq(l.organization_id, ACME, "organization_id"),
    )
    user_nowhere = client(USER_TOKEN, organization_id=NOBODY)
    r.call(
        "personal token, Polar-Organization not the user's: checkout_links.list (empty)",
        lambda: user_nowhere.checkout_links.list(),
        returns=out.ListResourceCheckoutLink,
        then=lambda p: eq(p.pagination.total_count, 0, "total_count"),
    )
    r.call("personal token, Polar-Organization not the user's: checkout_links.get -> 404", lambda: user_nowhere.checkout_links.get(full.id), raises=err.ResourceNotFound, status=404, then=not_found)
    r.call(
        "organisation token, its own Polar-Organization: checkout_links.list",
        lambda: client(ACME_TOKEN, organization_id=ACME).checkout_links.list(limit=100),
        returns=out.ListResourceCheckoutLink,
        then=lambda p: eq(p.pagination.total_count, live + 1, "total_count"),
    )
    r.call(
        "organisation token, another Polar-Organization -> 403",
        lambda: client(ACME_TOKEN, organization_id=GLOBEX).checkout_links.list(),
        raises=PolarClientError,
        status=403,
        then=lambda e: eq(json.loads(e.error)["error"], "NotPermitted", "error"),
    )

    # -- Polar-Version: a version the emulator does not serve
    class Unserved(sdk.Polar):  # type: ignore[misc, name-defined]
        version = "2026-07"

    unserved = Unserved(ACME_TOKEN, base_url=base)
    r.call(
        "Polar-Version 2026-07: checkout_links.list -> 404 {detail: Not Found}",
        lambda: unserved.checkout_links.list(),
        raises=PolarClientError,
        status=404,
        then=lambda e: eq(json.loads(e.error), {"detail": "Not Found"}, "body"),
    )
    # The SDK reads a 404 from get() as ResourceNotFound; Polar's version 404 is
    # not one, so the SDK cannot load it (no client mistakes it for a deleted link).
    r.call(
        "Polar-Version 2026-07: checkout_links.get -> not a ResourceNotFound",
        lambda: unserved.checkout_links.get(full.id),
        raises=PolarDeserializationError,
    )
    others = [v for v in VERSIONS if v != version]
    control(base, "PUT", "api-versions", {"versions": others, "default": others[0]})
    try:
        r.call(
            f"checkout_links.list after the emulator stops serving {version} -> 404",
            lambda: links.list(),
            raises=PolarClientError,
            status=404,
            then=lambda e: eq(json.loads(e.error), {"detail": "Not Found"}, "body"),
        )
    finally:
        control(base, "DELETE", "api-versions")
    r.call(f"checkout_links.list once {version} is served again", lambda: links.list(), returns=out.ListResourceCheckoutLink)

    # -- what the SDK sent
    sent = {e.get("polar_version") for e in control(base, "GET", "requests")}  # type: ignore[union-attr]
    r.calls += 1
    if sent <= {version, "2026-07"}:
        r.passed += 1
    else:
        r.fail("Polar-Version sent by the SDK", f"{sorted(map(str, sent))}, want {version}")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    base = argv[1].rstrip("/")
    versions = argv[2:] or VERSIONS
    r = Runner()
    for version in versions:
        try:
            run_pass(base, version, r)
        except Abort as e:
            r.fail("pass aborted", str(e))
        except Exception as e:  # noqa: BLE001 - a broken pass is a failure, not a crash
            r.fail("pass crashed", f"{type(e).__name__}: {e}")
    summary = f"polar-sdk {polar.__version__}: {r.calls} calls, {r.passed} passed"
    if r.failures:
        summary += f", {len(r.failures)} failed"
    print(summary)
    return 1 if r.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
