"""The caseworker console: a small aiohttp application in its own process.

Caseworkers and supervisors sign in, see the queue of waiting cases (most urgent first, then
the longest waiting) and their own cases, take a case, read its live transcript, reply,
transfer it to a colleague and close it with an outcome; supervisors also read the audit
(``console.audit``) and the anonymous figures of ``helpline figures`` (``console.figures``: a
table, or its HXL-tagged CSV to share). It reads and writes the cases through
``bot.cases.queue.Cases``; replies reach the person through a ``Relay`` (by default the Rasa
server's HTTP API). The console never sees the person's address: a case carries
only the pseudonymous conversation id, and the console does not show even that.
"""
