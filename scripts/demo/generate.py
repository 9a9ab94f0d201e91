"""A realistic day of accounts-receivable traffic, generated from a fixed seed.

generate(seed, tag, now) returns a Scenario: customers, invoices, and the day as phases of
messages, each message with its publishing role (billing, gateway, portal) and, for the
deliberately bad ones, the dead-letter reason we expect. Everything that could collide with
another run (customer, invoice, payment ids, invoice numbers, event sources) carries `tag`;
everything else (names, amounts, dates, which invoices get paid) depends on the seed only.

The day, as the phases are played:
  1  master data        billing upserts the customers (one is late: it comes in phase 4)
  2  billing sync       open items: a few hundred invoices, USD EUR GBP JPY KWD, due dates
                        from ~4 months ago to ~2 months ahead; a goodwill credit note
  3  gateway traffic    card, ACH, SEPA, wallet and wire payments: full, partial, several
                        invoices at once, on account (oldest first), over-payment, a payment
                        naming an invoice billing has not sent yet, ACH debits pending, a soft
                        and a hard decline, a re-sent duplicate
  4  corrections        adjustments, voids, write-offs, credit notes naming invoices, the late
                        customer, the pre-paid invoice, today's new invoices (credit applied),
                        refund of the over-payment, a chargeback, an ACH settling, a refund
                        for a payment the gateway never told us about (stays held)
Bad messages are mixed into phases 2-4 where they would naturally occur.
"""
import datetime as dt
import json
import math
import random
from dataclasses import dataclass, field

from money import MINOR_DIGITS, wire

# --- vocabulary ---------------------------------------------------------------------------------

ADJECTIVES = ["Blue Ridge", "Northwind", "Silver Birch", "Harborview", "Red Cedar", "Granite Peak", "Lakeside",
              "Summit", "Evergreen", "Copperline", "Bright Harbor", "Oakmont", "Westgate", "Sunfield", "Ironwood",
              "Clearwater", "Highland", "Riverbend", "Stonebridge", "Maplewood", "Falcon", "Bluewater", "Kestrel",
              "Meridian", "Pinecrest", "Redwood", "Saltmarsh", "Thornbury", "Windmill", "Aurora"]
TRADES = ["Logistics", "Dental Group", "Software", "Bakery Supply", "Engineering", "Print Works", "Medical",
          "Outfitters", "Analytics", "Hospitality", "Components", "Textiles", "Construction", "Labs", "Foods",
          "Architecture", "Freight", "Energy", "Robotics", "Pharmacy", "Media", "Auto Parts", "Farms", "Optics"]
JP_NAMES = ["Tanaka Seiki", "Kobayashi Shoji", "Yamamoto Denki", "Sakura Foods", "Fujimori Kogyo", "Hoshino Trading",
            "Aoyama Logistics", "Minato Medical"]
KW_NAMES = ["Al-Sabah Trading", "Gulf Star Contracting", "Al-Mutairi Foodstuff", "Failaka Marine Services",
            "Salmiya Medical Supplies", "Burgan Engineering"]

# currency -> (share of customers, [(time zone, locale, legal suffix, IBAN country)], methods with weights)
REGIONS = {
    "USD": (0.42, [("America/New_York", "en-US", "Inc.", "US"), ("America/Chicago", "en-US", "LLC", "US"),
                   ("America/Denver", "en-US", "Co.", "US"), ("America/Los_Angeles", "en-US", "Inc.", "US")],
            [("card", 34), ("ach", 34), ("wallet", 10), ("wire", 22)]),
    "EUR": (0.22, [("Europe/Berlin", "de-DE", "GmbH", "DE"), ("Europe/Paris", "fr-FR", "SARL", "FR"),
                   ("Europe/Madrid", "es-ES", "S.L.", "ES"), ("Europe/Amsterdam", "nl-NL", "B.V.", "NL"),
                   ("Europe/Dublin", "en-IE", "Ltd", "IE")],
            [("card", 30), ("sepa_debit", 35), ("wallet", 10), ("wire", 25)]),
    "GBP": (0.14, [("Europe/London", "en-GB", "Ltd", "GB")], [("card", 40), ("bank_transfer", 35), ("wallet", 10), ("wire", 15)]),
    "JPY": (0.12, [("Asia/Tokyo", "ja-JP", "K.K.", "JP")], [("wire", 60), ("card", 30), ("wallet", 10)]),
    "KWD": (0.10, [("Asia/Kuwait", "ar-KW", "W.L.L.", "KW")], [("wire", 65), ("card", 35)]),
}
# typical invoice size (median, in major units) and how prices are rounded
SIZES = {"USD": 1800, "EUR": 1500, "GBP": 1300, "JPY": 240000, "KWD": 600}
ADJUST_REASONS = ["price correction per contract", "freight added", "quantity discrepancy on delivery note",
                  "volume discount applied", "tax rate corrected"]
VOID_REASONS = ["duplicate billing", "order cancelled before shipment", "issued to wrong legal entity"]
WRITE_OFF_REASONS = ["small balance write-off", "uncollectible: customer insolvent", "uncollectible: statute of limitations"]
CREDIT_REASONS = ["damaged goods returned", "service level credit", "pricing dispute settled", "early payment discount"]


@dataclass
class Msg:
    role: str                  # billing | gateway | portal (the AMQP user that publishes it)
    body: object               # dict (an event) or bytes (a deliberately broken body)
    routing_key: str = None
    note: str = ""             # what it is, for the report
    expect: str = None         # expected x-rejection-reason for a bad message
    story: str = None          # scenario key


@dataclass
class Phase:
    key: str
    title: str
    messages: list = field(default_factory=list)


@dataclass
class Scenario:
    tag: str
    seed: int
    today: dt.date
    customers: dict            # id -> dict(name, currency, time_zone, ...)
    invoices: dict             # id -> dict(customer_id, currency, amount (minor), number, due_date, ...)
    phases: list
    stories: dict              # key -> dict of ids and a description
    bad: list                  # Msg with expect


class Generator:
    def __init__(self, seed, tag, now):
        self.rng = random.Random(seed)
        self.seed = seed
        self.tag = tag
        self.now = now
        self.today = now.date()
        self.sequence = 0
        self.customers = {}
        self.invoices = {}
        self.stories = {}
        self.bad = []
        self.counters = {"C": 0, "I": 0, "P": 0, "CN": 0, "R": 0}
        self.used_names = set()

    # ids and envelopes
    def next_id(self, kind):
        self.counters[kind] += 1
        width = {"C": 3, "I": 5, "P": 4, "CN": 3, "R": 3}[kind]
        return f"{kind}-{self.tag}-{self.counters[kind]:0{width}d}"

    def event(self, role, type_, data, subject=None, at=None):
        self.sequence += 1
        at = at or self.now
        return {"specversion": "1.0", "id": f"{self.tag}-{self.sequence:05d}", "source": f"urn:demo:{self.tag}:{role}",
                "type": type_, "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                **({"subject": subject} if subject else {}), "datacontenttype": "application/json", "data": data}

    def msg(self, role, type_, data, note="", story=None, expect=None, subject="auto", routing_key=None):
        if subject == "auto":
            subject = data.get("customer_id") if isinstance(data, dict) else None
        return Msg(role, self.event(role, type_, data, subject=subject), routing_key, note, expect, story)

    # values
    def amount(self, currency, scale=1.0):
        median = SIZES[currency] * scale
        major = math.exp(self.rng.gauss(math.log(median), 0.95))
        d = MINOR_DIGITS[currency]
        if currency == "JPY":
            net = max(3000, min(9_000_000, round(major, -3)))
            return int(round(net * 11 / 10))                         # consumption tax 10 %
        lo, hi = {"KWD": (12, 30000)}.get(currency, (45, 90000))
        major = max(lo, min(hi, major))
        if self.rng.random() < 0.35:
            return int(round(major)) * 10 ** d                     # whole units
        return int(round(major * 10 ** d))

    def pick(self, weighted):
        total = sum(w for _, w in weighted)
        x = self.rng.uniform(0, total)
        for value, w in weighted:
            x -= w
            if x <= 0:
                return value
        return weighted[-1][0]

    def company(self, currency, suffix):
        for _ in range(200):
            if currency == "JPY":
                base = self.rng.choice(JP_NAMES)
            elif currency == "KWD":
                base = self.rng.choice(KW_NAMES)
            else:
                base = f"{self.rng.choice(ADJECTIVES)} {self.rng.choice(TRADES)}"
            name = f"{base} {suffix}"
            if name not in self.used_names:
                self.used_names.add(name)
                return name
        return f"{base} {len(self.used_names)} {suffix}"

    def bank_account(self, country):
        if country == "US":
            return "".join(self.rng.choice("0123456789") for _ in range(12))
        length = {"DE": 18, "FR": 23, "ES": 20, "NL": 14, "IE": 18, "GB": 18, "JP": 14, "KW": 26}[country]
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        body = "".join(self.rng.choice(letters) for _ in range(4)) if country in ("NL", "IE", "GB", "KW") else ""
        body += "".join(self.rng.choice("0123456789") for _ in range(length - len(body)))
        return f"{country}{self.rng.randint(10, 99)}{body}"

    def received_at(self):
        back = dt.timedelta(minutes=self.rng.randint(5, 600))
        return (self.now - back).strftime("%Y-%m-%dT%H:%M:%SZ")

    # master data
    def new_customer(self, currency, name=None, second=None, accounts=None):
        cid = self.next_id("C")
        tz, locale, suffix, country = self.rng.choice(REGIONS[currency][1])
        name = name or self.company(currency, suffix)
        slug = "".join(ch for ch in name.lower() if ch.isalnum())[:18]
        customer = {"customer_id": cid, "name": name, "email": f"ap@{slug}.example", "locale": locale, "time_zone": tz,
                    "currency": currency, "currencies": [currency] + ([second] if second else []), "country": country}
        if accounts if accounts is not None else self.rng.random() < 0.45:
            customer["bank_accounts"] = [self.bank_account(country)]
        self.customers[cid] = customer
        return customer

    def upsert(self, customer, note="customer master data"):
        data = {k: customer[k] for k in ("customer_id", "name", "email", "locale", "time_zone") if k in customer}
        if "bank_accounts" in customer:
            data["bank_accounts"] = customer["bank_accounts"]
        return self.msg("billing", "customer.upserted", data, note)

    def new_invoice(self, customer, currency, amount=None, issue=None, terms=None):
        iid = self.next_id("I")
        n = int(iid.rsplit("-", 1)[1])
        terms = terms or self.pick([(15, 15), (30, 55), (45, 15), (60, 15)])
        issue = issue or self.today - dt.timedelta(days=self.rng.randint(0, 125))
        inv = {"invoice_id": iid, "customer_id": customer["customer_id"], "number": f"INV-{self.tag.upper()}-{n:05d}",
               "currency": currency, "amount": amount if amount is not None else self.amount(currency),
               "issue_date": issue, "due_date": issue + dt.timedelta(days=terms), "balance": None, "touched": False}
        inv["balance"] = inv["amount"]
        self.invoices[iid] = inv
        return inv

    def issue(self, inv, note="invoice", story=None):
        data = {"invoice_id": inv["invoice_id"], "customer_id": inv["customer_id"], "number": inv["number"],
                "currency": inv["currency"], "amount": wire(inv["amount"], inv["currency"]),
                "issue_date": inv["issue_date"].isoformat(), "due_date": inv["due_date"].isoformat(),
                "payment_reference": f"RF{self.rng.randint(10, 99)}{inv['number'].replace('-', '')}"[:34],
                "po_number": f"PO-{self.rng.randint(100000, 999999)}"}
        return self.msg("billing", "invoice.issued", data, note, story)

    def pay(self, customer_id, currency, amount, method, allocations=None, note="payment", story=None, payment_id=None):
        pid = payment_id or self.next_id("P")
        data = {"payment_id": pid, "customer_id": customer_id, "currency": currency, "amount": wire(amount, currency),
                "method": method, "received_at": self.received_at(), "gateway_reference": f"gw_{self.rng.getrandbits(48):012x}"}
        if allocations:
            data["allocations"] = [{"invoice_id": i, "amount": wire(a, currency)} for i, a in allocations]
        if method in ("card", "debit_card"):
            data["card"] = {"token": f"tok_{self.rng.getrandbits(40):010x}", "brand": self.pick([("visa", 5), ("mastercard", 4), ("amex", 2)]),
                            "last4": f"{self.rng.randint(0, 9999):04d}"}
        return self.msg("gateway", "payment.succeeded", data, note, story)

    # the day
    def build(self):
        rng = self.rng
        ph1 = Phase("master", "06:00  master data: billing upserts customers")
        ph2 = Phase("billing", "07:00  billing sync: open invoices, a goodwill credit note")
        ph3 = Phase("payments", "09:00-16:00  gateway: card / ACH / SEPA / wallet / wire payments")
        ph4 = Phase("corrections", "16:00-18:00  corrections, late master data, today's invoices, refunds, a chargeback")

        # --- story customers (fixed roles, names from the seed) ---
        s_over = self.new_customer("USD", accounts=False)          # over-payment, refunded
        s_charge = self.new_customer("USD", accounts=False)        # card payment charged back
        s_prepay = self.new_customer("KWD", accounts=True)         # wire before the invoice
        s_late = self.new_customer("GBP", accounts=True)           # upserted only in phase 4
        s_decline = self.new_customer("EUR", accounts=False)       # hard decline
        s_ach = self.new_customer("USD", accounts=True)            # ACH pending, settles
        s_pending = self.new_customer("USD", accounts=True)        # ACH pending, stays pending
        s_credit = self.new_customer("EUR", accounts=True)         # goodwill credit note, then a new invoice
        story_ids = {c["customer_id"] for c in (s_over, s_charge, s_prepay, s_late, s_decline, s_ach, s_pending, s_credit)}

        # --- bulk customers ---
        shares = [(cur, spec[0]) for cur, spec in REGIONS.items()]
        for _ in range(34):
            cur = self.pick(shares)
            second = None
            if rng.random() < 0.18:
                second = rng.choice([c for c in ("USD", "EUR", "GBP") if c != cur])
            self.new_customer(cur, second=second)

        for c in self.customers.values():
            if c is not s_late:
                ph1.messages.append(self.upsert(c))

        # --- invoices ---
        def story_invoice(customer, amount, days_ago, terms=30):
            return self.new_invoice(customer, customer["currency"], amount=amount,
                                    issue=self.today - dt.timedelta(days=days_ago), terms=terms)

        inv_over = story_invoice(s_over, 120000, 12)                # USD 1,200.00
        inv_charge = story_invoice(s_charge, 486050, 20)            # USD 4,860.50
        inv_late = story_invoice(s_late, 735000, 3)                 # GBP 7,350.00
        inv_decline = story_invoice(s_decline, 89900, 35)           # EUR 899.00
        inv_ach = [story_invoice(s_ach, 212500, 40), story_invoice(s_ach, 97525, 25)]
        inv_pending = [story_invoice(s_pending, 1450000, 31), story_invoice(s_pending, 380000, 10)]
        inv_credit_old = story_invoice(s_credit, 264000, 50)
        inv_prepay_old = story_invoice(s_prepay, 1875250, 70)       # KWD 1,875.250
        for c in self.customers.values():
            if c["customer_id"] in story_ids:
                continue
            for _ in range(rng.randint(3, 13)):
                cur = c["currency"] if not c["currencies"][1:] or rng.random() < 0.7 else c["currencies"][1]
                self.new_invoice(c, cur)
        for inv in sorted(self.invoices.values(), key=lambda i: (i["issue_date"], i["invoice_id"])):
            story = {inv_late["invoice_id"]: "held_customer"}.get(inv["invoice_id"])
            note = "invoice for a customer billing has not sent yet" if story else "invoice"
            ph2.messages.append(self.issue(inv, note, story))
        ph2.messages.append(self.msg("billing", "credit_note.issued", {
            "credit_note_id": self.next_id("CN"), "customer_id": s_credit["customer_id"], "currency": "EUR", "amount": "300.00"},
            "goodwill credit note, no invoice named: waits as credit", "credit_first"))
        self.stories["held_customer"] = {"customer": s_late["customer_id"], "invoice": inv_late["invoice_id"],
                                         "what": "invoice sent before its customer: held, released when the customer is upserted"}
        self.stories["credit_first"] = {"customer": s_credit["customer_id"],
                                        "what": "EUR 300.00 goodwill credit note waits as credit; applied to the next EUR invoice"}

        # --- phase 3: payments ---
        bulk = [i for i in self.invoices.values() if i["customer_id"] not in story_ids]
        on_account = set(rng.sample(sorted({i["customer_id"] for i in bulk}), 3))
        by_customer = {}
        for inv in bulk:
            by_customer.setdefault((inv["customer_id"], inv["currency"]), []).append(inv)
        payments3 = []
        for (cid, cur), invs in sorted(by_customer.items()):
            methods = REGIONS[cur][2]
            if cid in on_account:
                invs.sort(key=lambda i: (i["due_date"], i["invoice_id"]))
                amount = sum(i["amount"] for i in invs[:2]) + (invs[2]["amount"] // 3 if len(invs) > 2 else 0)
                payments3.append(self.pay(cid, cur, amount, "wire", None,
                                          "wire on account, no remittance: applied oldest due first"))
                for i in invs:
                    i["touched"] = True
                continue
            full, grouped = [], []
            for inv in invs:
                overdue = (self.today - inv["due_date"]).days
                p_full, p_part = ((0.25, 0.05) if overdue < 0 else (0.55, 0.12) if overdue <= 30 else
                                  (0.40, 0.10) if overdue <= 60 else (0.30, 0.10) if overdue <= 90 else (0.15, 0.10))
                x = rng.random()
                if x < p_full:
                    full.append(inv)
                elif x < p_full + p_part:
                    unit = 100 if cur == "JPY" else 10 ** MINOR_DIGITS[cur]
                    part = max(unit, int(inv["amount"] * rng.choice([0.25, 0.4, 0.5, 0.6])) // unit * unit)
                    inv["touched"] = True
                    inv["balance"] -= part
                    payments3.append(self.pay(cid, cur, part, self.pick(methods), [(inv["invoice_id"], part)],
                                              "partial payment"))
            while full:
                take = full[:rng.choice([1, 1, 1, 2, 3])]
                full = full[len(take):]
                for inv in take:
                    inv["touched"] = True
                    inv["balance"] = 0
                    inv["paid"] = True
                payments3.append(self.pay(cid, cur, sum(i["amount"] for i in take), self.pick(methods),
                                          [(i["invoice_id"], i["amount"]) for i in take],
                                          "payment in full" if len(take) == 1 else f"one payment for {len(take)} invoices"))
        rng.shuffle(payments3)

        # story payments
        p_over = self.pay(s_over["customer_id"], "USD", 145000, "card", [(inv_over["invoice_id"], 120000)],
                          "over-payment: USD 250.00 more than the invoice", "overpay_refund")
        p_charge = self.pay(s_charge["customer_id"], "USD", 486050, "card", [(inv_charge["invoice_id"], 486050)],
                            "card payment (charged back later)", "chargeback")
        inv_prepay = self.new_invoice(s_prepay, "KWD", amount=3250500, issue=self.today, terms=30)   # issued in phase 4
        p_prepay = self.pay(s_prepay["customer_id"], "KWD", 3250500, "wire", [(inv_prepay["invoice_id"], 3250500)],
                            "wire naming an invoice billing has not sent yet", "prepaid")
        p_prepay_old = self.pay(s_prepay["customer_id"], "KWD", 1000000, "wire", [(inv_prepay_old["invoice_id"], 1000000)],
                                "partial wire", None)
        pid_ach = self.next_id("P")
        ach_total = sum(i["amount"] for i in inv_ach)
        pending_ach = self.msg("gateway", "payment.pending", {
            "payment_id": pid_ach, "customer_id": s_ach["customer_id"], "currency": "USD", "amount": wire(ach_total, "USD"),
            "method": "ach", "initiated_at": self.received_at(), "invoice_ids": [i["invoice_id"] for i in inv_ach],
            "expected_settlement_date": (self.today + dt.timedelta(days=2)).isoformat()}, "ACH debit initiated", "ach_settles")
        pid_pend = self.next_id("P")
        pend_total = sum(i["amount"] for i in inv_pending)
        pending_stay = self.msg("gateway", "payment.pending", {
            "payment_id": pid_pend, "customer_id": s_pending["customer_id"], "currency": "USD", "amount": wire(pend_total, "USD"),
            "method": "ach", "initiated_at": self.received_at(), "invoice_ids": [i["invoice_id"] for i in inv_pending],
            "expected_settlement_date": (self.today + dt.timedelta(days=3)).isoformat()}, "ACH debit initiated (settles in 3 days)", "ach_pending")
        pid_decline = self.next_id("P")
        decline = self.msg("gateway", "payment.failed", {
            "payment_id": pid_decline, "customer_id": s_decline["customer_id"], "currency": "EUR", "amount": "899.00",
            "method": "card", "failure_code": "do_not_honor", "retryable": False, "invoice_ids": [inv_decline["invoice_id"]],
            "attempt": 1}, "card hard-declined (do_not_honor, not retryable)", "hard_decline")
        soft_target = next(i for i in bulk if not i["touched"] and i["currency"] == "USD")
        soft = self.msg("gateway", "payment.failed", {
            "payment_id": self.next_id("P"), "customer_id": soft_target["customer_id"], "currency": "USD",
            "amount": wire(soft_target["amount"], "USD"), "method": "ach", "failure_code": "insufficient_funds", "retryable": True,
            "invoice_ids": [soft_target["invoice_id"]], "attempt": 1}, "ACH soft decline (insufficient funds, retryable)", "soft_decline")
        soft_target["touched"] = True

        # the re-sent duplicate: the same event (same source and id) delivered twice
        dup_of = next(m for m in payments3 if m.note == "payment in full")
        resend = Msg(dup_of.role, json.loads(json.dumps(dup_of.body)), None, "the same payment event re-sent (same id)", None, "resend")
        # the same payment again under a new event id (gateway retried its webhook)
        again = json.loads(json.dumps(dup_of.body))
        self.sequence += 1
        again["id"] = f"{self.tag}-{self.sequence:05d}"
        resend2 = Msg(dup_of.role, again, None, "the same payment under a new event id", None, "resend")
        dup_of.story = "resend"
        self.stories["resend"] = {"payment": dup_of.body["data"]["payment_id"], "customer": dup_of.body["data"]["customer_id"],
                                  "what": "a payment event delivered 3 times (twice the same id, once a new id): booked once"}

        specials = [p_over, p_charge, p_prepay, p_prepay_old, pending_ach, pending_stay, decline, soft]
        body3 = payments3 + specials
        rng.shuffle(body3)
        # duplicates come late in the day, after the original
        pos = body3.index(dup_of)
        body3.insert(rng.randint(pos + 1, len(body3)), resend)
        body3.insert(rng.randint(body3.index(resend) + 1, len(body3)), resend2)
        ph3.messages.extend(body3)
        # billing sends another KWD invoice for the pre-paying customer before the one the wire named:
        # the money held for the named invoice must not be spent on it
        inv_other = self.new_invoice(s_prepay, "KWD", amount=412750, issue=self.today, terms=30)
        ph3.messages.append(self.issue(inv_other, "another invoice for the pre-paying customer (must not take the held wire)",
                                       "prepaid_not_spent"))
        self.stories["prepaid_not_spent"] = {"customer": s_prepay["customer_id"], "invoice": inv_other["invoice_id"],
                                             "what": "an unrelated KWD invoice issued while the wire is held: the held money stays held"}

        self.stories["overpay_refund"] = {"customer": s_over["customer_id"], "invoice": inv_over["invoice_id"],
                                          "payment": p_over.body["data"]["payment_id"],
                                          "what": "USD 1,450.00 paid on a USD 1,200.00 invoice; the USD 250.00 excess refunded"}
        self.stories["chargeback"] = {"customer": s_charge["customer_id"], "invoice": inv_charge["invoice_id"],
                                      "payment": p_charge.body["data"]["payment_id"],
                                      "what": "card payment charged back: the invoice reopens"}
        self.stories["prepaid"] = {"customer": s_prepay["customer_id"], "invoice": inv_prepay["invoice_id"],
                                   "payment": p_prepay.body["data"]["payment_id"],
                                   "what": "KWD wire names an invoice not issued yet: held for it, applied when it is issued"}
        self.stories["hard_decline"] = {"customer": s_decline["customer_id"], "payment": pid_decline,
                                        "what": "hard decline (retryable=false): the customer is told (payment.failed_notice)"}
        self.stories["ach_settles"] = {"customer": s_ach["customer_id"], "payment": pid_ach,
                                       "invoices": [i["invoice_id"] for i in inv_ach],
                                       "what": "ACH debit pending in the morning, settled in the afternoon"}
        self.stories["ach_pending"] = {"customer": s_pending["customer_id"], "payment": pid_pend,
                                       "what": "ACH debit still pending at the end of the day (shown as pending)"}

        # --- phase 4: corrections, late data, refunds ---
        p4 = []
        untouched = [i for i in bulk if not i["touched"] and i["customer_id"] not in on_account]
        rng.shuffle(untouched)

        def take_untouched(pred=lambda i: True):
            for i in untouched:
                if pred(i):
                    untouched.remove(i)
                    i["touched"] = True
                    return i
            return None

        for _ in range(6):
            inv = take_untouched()
            factor = rng.choice([0.85, 0.9, 0.95, 1.05, 1.1, 1.15])
            new = int(inv["amount"] * factor) // 10 ** MINOR_DIGITS[inv["currency"]] * 10 ** MINOR_DIGITS[inv["currency"]]
            inv["balance"] = inv["amount"] = new
            p4.append(self.msg("billing", "invoice.adjusted", {"invoice_id": inv["invoice_id"], "amount": wire(new, inv["currency"]),
                                                               "reason": rng.choice(ADJUST_REASONS)}, "invoice adjusted", subject=inv["customer_id"]))
        paid_full = [i for i in bulk if i.get("paid") and i["customer_id"] not in on_account]
        inv = rng.choice(paid_full)
        new = inv["amount"] * 9 // 10 // 10 ** MINOR_DIGITS[inv["currency"]] * 10 ** MINOR_DIGITS[inv["currency"]]
        p4.append(self.msg("billing", "invoice.adjusted", {"invoice_id": inv["invoice_id"], "amount": wire(new, inv["currency"]),
                                                           "reason": "volume discount applied after payment"},
                           "paid invoice reduced by 10 %: the excess becomes credit", "adjust_credit", subject=inv["customer_id"]))
        self.stories["adjust_credit"] = {"customer": inv["customer_id"], "invoice": inv["invoice_id"],
                                         "what": "a paid invoice reduced after payment: the excess becomes customer credit"}
        for _ in range(4):
            inv = take_untouched()
            inv["voided"] = True
            p4.append(self.msg("billing", "invoice.voided", {"invoice_id": inv["invoice_id"], "reason": rng.choice(VOID_REASONS)},
                               "invoice voided", subject=inv["customer_id"]))
        partial = [i for i in bulk if i["touched"] and not i.get("paid") and 0 < i["balance"] < i["amount"]
                   and i["customer_id"] not in on_account and not i.get("voided")]
        inv = rng.choice(partial)
        inv["voided"] = True
        p4.append(self.msg("billing", "invoice.voided", {"invoice_id": inv["invoice_id"], "reason": "order cancelled, deposit kept on account"},
                           "partly paid invoice voided: what was paid becomes credit", "void_credit", subject=inv["customer_id"]))
        self.stories["void_credit"] = {"customer": inv["customer_id"], "invoice": inv["invoice_id"],
                                       "what": "a partly paid invoice voided: the money paid becomes credit"}
        for _ in range(3):
            inv = take_untouched(lambda i: (self.today - i["due_date"]).days > 75) or take_untouched()
            p4.append(self.msg("billing", "invoice.written_off", {"invoice_id": inv["invoice_id"], "reason": rng.choice(WRITE_OFF_REASONS)},
                               "invoice written off", subject=inv["customer_id"]))
        for _ in range(6):
            inv = take_untouched()
            cur = inv["currency"]
            amount = max(10 ** MINOR_DIGITS[cur], int(inv["amount"] * rng.choice([0.05, 0.1, 0.15, 0.2, 0.3])))
            p4.append(self.msg("billing", "credit_note.issued", {
                "credit_note_id": self.next_id("CN"), "customer_id": inv["customer_id"], "currency": cur, "amount": wire(amount, cur),
                "invoice_id": inv["invoice_id"]}, f"credit note for {inv['number']}: {rng.choice(CREDIT_REASONS)}"))
        # late master data releases the held invoice; the pre-paid invoice arrives
        p4.append(self.upsert(s_late, "customer upserted late (its invoice was held)"))
        p4[-1].story = "held_customer"
        p4.append(self.issue(inv_prepay, "the invoice the morning wire named", "prepaid"))
        # today's invoices
        todays = [self.new_invoice(s_credit, "EUR", amount=118000, issue=self.today, terms=30)]
        self.stories["credit_first"]["invoice"] = todays[0]["invoice_id"]
        credit_holders = [self.stories["adjust_credit"]["customer"], self.stories["void_credit"]["customer"]]
        for cid in credit_holders + rng.sample(sorted(c for c in self.customers if c not in story_ids), 8):
            c = self.customers[cid]
            cur = c["currency"]
            if cid in credit_holders:   # bill in the currency the credit is in
                cur = self.invoices[self.stories["adjust_credit" if cid == credit_holders[0] else "void_credit"]["invoice"]]["currency"]
            todays.append(self.new_invoice(c, cur, issue=self.today, terms=self.pick([(15, 1), (30, 3)])))
        for inv in todays:
            p4.append(self.issue(inv, "today's invoice", "credit_first" if inv is todays[0] else None))
        # gateway afternoon
        p4.append(self.msg("gateway", "payment.refunded", {"payment_id": p_over.body["data"]["payment_id"], "amount": "250.00",
                                                           "refund_id": self.next_id("R"), "currency": "USD",
                                                           "reason": "over-payment returned to the customer"},
                           "refund of the over-payment", "overpay_refund", subject=None))
        p4.append(self.msg("gateway", "payment.reversed", {"payment_id": p_charge.body["data"]["payment_id"], "amount": "4860.50",
                                                           "reason": "chargeback", "currency": "USD", "reversal_id": f"CB-{self.tag}-001"},
                           "chargeback (card issuer took the money back)", "chargeback", subject=None))
        p4.append(self.pay(s_ach["customer_id"], "USD", ach_total, "ach", [(i["invoice_id"], i["amount"]) for i in inv_ach],
                           "the morning ACH debit settles", "ach_settles", payment_id=pid_ach))
        ghost = f"P-{self.tag}-EXT-77"
        p4.append(self.msg("gateway", "payment.refunded", {"payment_id": ghost, "amount": "80.00", "refund_id": self.next_id("R"),
                                                           "reason": "refund issued in the gateway dashboard"},
                           "refund of a payment we never received: held until it arrives", "ghost_refund", subject=None))
        self.stories["ghost_refund"] = {"payment": ghost, "what": "refund of a payment not (yet) seen: stays held (visible in held list)"}
        rng.shuffle(p4)
        # keep causal order where it matters: upsert before nothing else needs it; the refund and reversal after phase 3 anyway
        ph4.messages.extend(p4)

        self.add_bad_messages(ph2, ph3, ph4, bulk, p_over, p_charge, s_over, s_charge, inv_charge)
        return Scenario(self.tag, self.seed, self.today, self.customers, self.invoices, [ph1, ph2, ph3, ph4], self.stories, self.bad)

    def add_bad_messages(self, ph2, ph3, ph4, bulk, p_over, p_charge, s_over, s_charge, inv_charge):
        rng = self.rng
        some = [i for i in bulk if i["currency"] == "USD"][0]
        cust = self.customers[some["customer_id"]]

        def put(phase, m):
            m.story = m.story or "bad"
            self.bad.append(m)
            phase.messages.insert(rng.randint(len(phase.messages) // 4, len(phase.messages)), m)

        # amount as a JSON number
        inv = self.new_invoice(cust, "USD", amount=125000)
        m = self.issue(inv, "invoice with the amount as a JSON number")
        m.body["data"]["amount"] = 1250.00
        m.expect = "amount_not_string"
        self.invoices.pop(inv["invoice_id"])
        put(ph2, m)
        # unknown currency (RMB is not an ISO 4217 code; CNY is)
        inv = self.new_invoice(cust, "USD", amount=880000)
        m = self.issue(inv, "invoice in 'RMB' (not ISO 4217; CNY is)")
        m.body["data"]["currency"] = "RMB"
        m.expect = "unknown_currency"
        self.invoices.pop(inv["invoice_id"])
        put(ph2, m)
        # wrong minor digits: yen has no fraction
        jp = next(c for c in self.customers.values() if c["currency"] == "JPY")
        m = self.pay(jp["customer_id"], "JPY", 1, "card", None, "JPY payment '15400.50' (yen has no minor unit)")
        m.body["data"]["amount"] = "15400.50"
        m.expect = "wrong_minor_digits"
        put(ph3, m)
        kw = next(c for c in self.customers.values() if c["currency"] == "KWD")
        m = self.pay(kw["customer_id"], "KWD", 1, "wire", None, "KWD payment '120.5000' (fils have 3 digits)")
        m.body["data"]["amount"] = "120.5000"
        m.expect = "wrong_minor_digits"
        put(ph3, m)
        # a publisher sending a type it may not: the gateway voiding an invoice
        m = self.msg("gateway", "invoice.voided", {"invoice_id": some["invoice_id"], "reason": "customer asked the gateway"},
                     "gateway tries to void an invoice (billing's job)", expect="forbidden_publisher", subject=None)
        put(ph3, m)
        # the billing system sending a payment
        m = self.pay(cust["customer_id"], "USD", 5000, "check", None, "billing publishes a payment (gateway's job)")
        m.role = "billing"
        m.body["source"] = f"urn:demo:{self.tag}:billing"
        m.expect = "forbidden_publisher"
        put(ph3, m)
        # a duplicate invoice: same invoice_id, different amount, new event id
        orig = next(msg for msg in ph2.messages if msg.body.get("type") == "invoice.issued" and msg.body["data"]["currency"] == "EUR")
        dup = json.loads(json.dumps(orig.body))
        self.sequence += 1
        dup["id"] = f"{self.tag}-{self.sequence:05d}"
        cur = dup["data"]["currency"]
        from money import parse
        dup["data"]["amount"] = wire(parse(dup["data"]["amount"], cur) + 10000, cur)
        m = Msg("billing", dup, None, f"invoice {dup['data']['number']} sent again with a different amount", "conflicting_duplicate")
        self.bad.append(m)
        m.story = "bad"
        ph4.messages.insert(rng.randint(0, len(ph4.messages)), m)
        # refund in the wrong currency
        m = self.msg("gateway", "payment.refunded", {"payment_id": p_charge.body["data"]["payment_id"], "amount": "100.00",
                                                     "refund_id": self.next_id("R"), "currency": "EUR"},
                     "refund in EUR of a USD payment", expect="currency_mismatch", subject=None)
        put(ph4, m)
        # refund larger than the payment
        m = self.msg("gateway", "payment.refunded", {"payment_id": p_over.body["data"]["payment_id"], "amount": "9000.00",
                                                     "refund_id": self.next_id("R"), "currency": "USD"},
                     "refund of USD 9,000.00 on a USD 1,450.00 payment", expect="amount_exceeds_balance", subject=None)
        put(ph4, m)
        # a credit note naming another customer's invoice
        m = self.msg("billing", "credit_note.issued", {"credit_note_id": self.next_id("CN"), "customer_id": s_over["customer_id"],
                                                       "currency": "USD", "amount": "50.00", "invoice_id": inv_charge["invoice_id"]},
                     "credit note naming another customer's invoice", expect="foreign_reference")
        put(ph4, m)
        # schema violation: a payment without received_at
        m = self.pay(cust["customer_id"], "USD", 20000, "card", None, "payment without received_at")
        del m.body["data"]["received_at"]
        m.expect = "schema_violation"
        put(ph3, m)
        # not JSON at all (a truncated body)
        text = json.dumps(self.event("billing", "invoice.issued", {"invoice_id": f"I-{self.tag}-TRUNC", "customer_id": cust["customer_id"]}))
        m = Msg("billing", text[: len(text) - 17].encode(), "invoice.issued", "truncated body (not JSON)", "not_json", "bad")
        self.bad.append(m)
        ph2.messages.insert(rng.randint(0, len(ph2.messages)), m)


def generate(seed, tag, now):
    return Generator(seed, tag, now).build()
