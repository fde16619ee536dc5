"""MQTT consumer: receipt batches and telemetry from the broker into ingest, acks back after
the commit.

Subscribes through shared subscriptions ($share/<group>/tilltap/+/receipts and
.../telemetry), so any number of `tilltap serve` processes split the load, each message going
to one of them.

Who may join the group: Mosquitto's acl_file never checks subscriptions (its ACL check returns
success for every SUBSCRIBE), so a device could join a group whose name it knows and take a
share of other devices' batches, which the ACL then forbids it to read: they would be lost to
the server. The group's name is therefore derived from the server account's credential
(share_group()): every process of the server account computes the same name, a device cannot.

Failure assumptions:
- Delivery is the device's job: it resends a batch until the server's ack (sent after the
  commit) arrives. The broker's PUBACK to us is sent only after the commit (paho manual ack).
- The session is clean (clean_session=True): a server process that stops or dies leaves no
  session in the group, so no stale session can be handed deliveries nobody will read. (With
  persistent sessions an old process's session, under another client ID, stayed in the group
  and took its share of every device's batches until the devices resent them.) What a dying
  process held unacked, and what was published while no server was connected, comes again as
  the device's resend after its ack timeout. The client ID (`tilltap serve --client-id`,
  default tilltap-serve-<hostname>-<port>) must still be unique per process: the broker
  disconnects a client when another connects with its ID.
- A batch can be stored and the ack lost (we die in between, the device is offline): the device
  resends, ingest stores nothing new and acks again.
- Payloads can be anything. A bad one is logged and counted, PUBACKed (so the broker stops
  redelivering it) and never acked at the application level; the consumer never raises.
- A device removed from the registry may still hold a broker connection until Mosquitto reloads
  its password file: the consumer checks the registry at commit time and drops its messages.
"""
import hashlib
import hmac
import logging
import threading

import paho.mqtt.client as mqtt

from tilltap_fw import protocol, protocol_check

log = logging.getLogger("tilltap.mqtt")


def share_group(password):
    """The shared-subscription group of the server account with this credential: the protocol's
    group name and 128 bits of an HMAC of the credential (see the module docstring). Without a
    credential (an anonymous broker, where anyone may read anything) the plain name."""
    if not password:
        return protocol.SHARE_GROUP
    tag = hmac.new(password.encode(), protocol.SHARE_GROUP.encode(), hashlib.sha256)
    return "%s-%s" % (protocol.SHARE_GROUP, tag.hexdigest()[:32])


class Consumer:
    """A paho client feeding an ingest.Ingest. start() connects and runs paho's network thread.

    tls_ca: CA file to verify the broker with (enables TLS). client_id: unique per process
    (the broker drops a client when another connects with its ID). group: the shared
    subscription group, by default share_group(password).
    """

    def __init__(self, ingest, host, port, username, password, client_id, tls_ca=None,
                 group=None):
        self._ingest = ingest
        self._group = group or share_group(password)
        self.connected = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=True, protocol=mqtt.MQTTv311)
        c.username_pw_set(username, password)
        if tls_ca:
            c.tls_set(ca_certs=tls_ca)
        c.manual_ack_set(True)
        # Acks are published from the writer thread in bursts after each group commit.
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        # paho annotates the delays int; they are seconds used in float arithmetic
        c.reconnect_delay_set(0.2, 5)  # type: ignore[arg-type]
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        self._unreachable = False   # said once per outage, not at every retry
        c.on_message = self._on_message
        self._client = c
        self._host, self._port = host, port

    def start(self):
        """Connects in the background (paho retries until the broker is up)."""
        self._client.connect_async(self._host, self._port, keepalive=30)
        self._client.loop_start()

    def stop(self):
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect_fail(self, client, userdata):
        if not self._unreachable:
            self._unreachable = True
            log.warning("broker %s:%d cannot be reached; retrying until it answers",
                        self._host, self._port)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("broker refused the consumer: %s", reason_code)
            return
        self._unreachable = False
        client.subscribe([(protocol_check.shared_filter("receipts", self._group), 1),
                          (protocol_check.shared_filter("telemetry", self._group), 1)])
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        log.warning("disconnected from broker: %s", reason_code)

    def _on_message(self, client, userdata, msg):
        try:
            self._handle(client, msg)
        except Exception:  # never let one message stop the network thread
            log.exception("message on %s", msg.topic)
            self._ingest.count("mqtt_errors")
            client.ack(msg.mid, msg.qos)

    def _handle(self, client, msg):
        device, kind = protocol_check.device_from_topic(msg.topic)
        if kind not in ("receipts", "telemetry"):
            self._ingest.count("mqtt_bad_topic")
            client.ack(msg.mid, msg.qos)
            return
        mid, qos = msg.mid, msg.qos

        def committed(result):
            # what the device must hear: seqs stored, seqs refused for good (set aside on the
            # board), or an operator's request in the answer to telemetry
            if result.acked or any(seq is not None for seq, _ in result.rejected) or \
                    result.retry_refused is not None:
                client.publish(protocol.ack_topic(device), result.ack_payload(), qos=1)
            if result.error is not None:
                log.warning("%s from %s refused: %s", kind, device, result.error)
            client.ack(mid, qos)  # the broker may forget it now: stored, or refused for good

        if kind == "receipts":
            fut = self._ingest.submit_batch(device, msg.payload, committed)
        else:
            fut = self._ingest.submit_telemetry(device, msg.payload, committed)
        fut.add_done_callback(lambda f: f.exception() is not None and self._db_failed(mid, qos))

    def _db_failed(self, mid, qos):
        # Not stored, so no app-level ack: the device resends when its ack timeout expires.
        # The broker copy is released anyway; left un-PUBACKed it would fill the broker's
        # in-flight window towards us and stall this consumer until a reconnect.
        self._ingest.count("mqtt_db_errors")
        self._client.ack(mid, qos)
