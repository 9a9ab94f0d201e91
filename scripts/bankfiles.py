"""Bank statement files as banks write them, for the black-box tests and the demo: camt.053 /
camt.054 (ISO 20022 XML), BAI2 and MT940. Independent of the daemon's own writer (Swift
BankStatementWriter), so a test that publishes these files checks the parsers too.

An entry is a dict:
    ref             the bank's reference (camt AcctSvcrRef, BAI2 bank reference, MT940 after //)
    amount          minor units (positive)
    credit          True (default) or False
    text            remittance text (optional)
    structured      structured creditor reference (camt only)
    debtor_name, debtor_account, e2e   (optional)
    status          camt entry status, default BOOK
"""
from xml.sax.saxutils import escape

DIGITS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KWD": 3}


def decimal(minor, currency, separator="."):
    digits = DIGITS[currency]
    minor = abs(minor)
    if digits == 0:
        return str(minor)
    return f"{minor // 10 ** digits}{separator}{minor % 10 ** digits:0{digits}d}"


def iban(country, bban):
    """A valid IBAN for a country code and BBAN (ISO 13616 check digits)."""
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"


def creditor_reference(body):
    """A valid ISO 11649 reference for `body` (letters and digits)."""
    number = int("".join(str(int(c, 36)) for c in (body + "RF00").upper()))
    return f"RF{98 - number % 97:02d}{body.upper()}"


def booked_net(entries):
    return sum((e["amount"] if e.get("credit", True) else -e["amount"]) for e in entries if e.get("status", "BOOK") == "BOOK")


def camt(kind, account, currency, entries, statement_id, booking_date="2026-03-14", opening=0, sequence="1"):
    """A camt.053 statement (opening and closing balance, which add up) or camt.054 notification."""
    assert kind in ("053", "054")
    root, element = ("BkToCstmrStmt", "Stmt") if kind == "053" else ("BkToCstmrDbtCdtNtfctn", "Ntfctn")
    out = [f'<?xml version="1.0" encoding="UTF-8"?>',
           f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.{kind}.001.08">',
           f"<{root}><GrpHdr><MsgId>{escape(statement_id)}-MSG</MsgId><CreDtTm>{booking_date}T18:00:00</CreDtTm></GrpHdr>",
           f"<{element}><Id>{escape(statement_id)}</Id><ElctrncSeqNb>{sequence}</ElctrncSeqNb>",
           f"<Acct><Id><IBAN>{account}</IBAN></Id><Ccy>{currency}</Ccy></Acct>"]

    def balance(code, minor):
        return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"{currency}\">{decimal(minor, currency)}</Amt>"
                f"<CdtDbtInd>{'DBIT' if minor < 0 else 'CRDT'}</CdtDbtInd><Dt><Dt>{booking_date}</Dt></Dt></Bal>")

    if kind == "053":
        out.append(balance("OPBD", opening))
        out.append(balance("CLBD", opening + booked_net(entries)))
    for e in entries:
        credit = e.get("credit", True)
        out.append(f"<Ntry><Amt Ccy=\"{currency}\">{decimal(e['amount'], currency)}</Amt><CdtDbtInd>{'CRDT' if credit else 'DBIT'}</CdtDbtInd>"
                   f"<Sts><Cd>{e.get('status', 'BOOK')}</Cd></Sts><BookgDt><Dt>{booking_date}</Dt></BookgDt><ValDt><Dt>{booking_date}</Dt></ValDt>"
                   f"<AcctSvcrRef>{escape(e['ref'])}</AcctSvcrRef>"
                   f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{'RCDT' if credit else 'CCRD'}</Cd><SubFmlyCd>{'ESCT' if credit else 'CHRG'}</SubFmlyCd></Fmly></Domn></BkTxCd>"
                   "<NtryDtls><TxDtls>")
        if e.get("e2e"):
            out.append(f"<Refs><EndToEndId>{escape(e['e2e'])}</EndToEndId></Refs>")
        if e.get("debtor_name") or e.get("debtor_account"):
            out.append("<RltdPties>")
            if e.get("debtor_name"):
                out.append(f"<Dbtr><Pty><Nm>{escape(e['debtor_name'])}</Nm></Pty></Dbtr>")
            if e.get("debtor_account"):
                out.append(f"<DbtrAcct><Id><IBAN>{escape(e['debtor_account'])}</IBAN></Id></DbtrAcct>")
            out.append("</RltdPties>")
        if e.get("text") or e.get("structured"):
            out.append("<RmtInf>")
            if e.get("text"):
                out.append(f"<Ustrd>{escape(e['text'])}</Ustrd>")
            if e.get("structured"):
                out.append(f"<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{escape(e['structured'])}</Ref></CdtrRefInf></Strd>")
            out.append("</RmtInf>")
        out.append("</TxDtls></NtryDtls></Ntry>")
    out.append(f"</{element}></{root}></Document>")
    return "\n".join(out).encode()


def bai2(account, currency, entries, as_of="260314", opening=0, file_id="1"):
    """A BAI2 file with one group and one account; control totals and record counts right."""
    closing = opening + booked_net(entries)
    lines = [f"02,RECEIVER,BANK,1,{as_of},0000,{currency},2/", f"03,{account},{currency},010,{opening},,,015,{closing},,/"]
    total = opening + closing
    for e in entries:
        code = "195" if e.get("credit", True) else "495"
        text = e.get("text", "")
        lines.append(f"16,{code},{e['amount']},0,{e['ref']},{e.get('e2e', '')},{text[:40]}")
        rest = text[40:]
        while rest:
            lines.append("88," + rest[:60])
            rest = rest[60:]
        total += e["amount"]
    lines.append(f"49,{total},{len(lines)}/")
    lines.append(f"98,{total},1,{len(lines) + 1}/")
    return ("\n".join([f"01,SENDER,RECEIVER,{as_of},1800,{file_id},,,2/"] + lines + [f"99,{total},1,{len(lines) + 2}/"]) + "\n").encode()


def mt940(account, currency, entries, statement_id, date="260314", opening=0):
    """An MT940 message; :86: in the keyword dialect (/REMI/ /NAME/ /IBAN/), wrapped at 65 columns."""
    def amount(minor):
        text = decimal(minor, currency, ",")
        return text if "," in text else text + ","

    lines = ["{1:F01THIRDBANKXXX0000000000}{2:O9401800" + date + "THIRDBANKXXX00000000002603141800N}{4:",
             f":20:{statement_id}", f":25:{account}", ":28C:1/1",
             f":60F:{'D' if opening < 0 else 'C'}{date}{currency}{amount(opening)}"]
    for e in entries:
        mark = "C" if e.get("credit", True) else "D"
        lines.append(f":61:{date}{date[2:]}{mark}{amount(e['amount'])}NTRF{e.get('e2e') or 'NONREF'}//{e['ref']}")
        info = "/REMI/" + e.get("text", "")
        if e.get("debtor_name"):
            info += "/NAME/" + e["debtor_name"]
        if e.get("debtor_account"):
            info += "/IBAN/" + e["debtor_account"]
        field = ":86:" + info
        while field:
            lines.append(field[:65])
            field = field[65:]
    closing = opening + booked_net(entries)
    lines.append(f":62F:{'D' if closing < 0 else 'C'}{date}{currency}{amount(closing)}")
    lines.append("-}")
    return ("\r\n".join(lines) + "\r\n").encode()
