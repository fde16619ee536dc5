"""MQTT consumer: receipt batches and telemetry from the broker into ingest, acks back after
the commit.

Subscribes through shared subscriptions ($share/tilltap-ingest/tilltap/+/receipts and
.../telemetry), so any number of `tilltap serve` processes split the load, each message going
to one of them.

Failure assumptions:
- This process can die with messages in flight. The broker's PUBACK to us is sent only after
  the commit (paho manual ack), so the broker redelivers what we had not stored (the device's
  resend after its ack timeout is the recovery path of last resort); and the session is
  persistent (clean_session=False, stable client ID), so messages published while we
  are down wait at the broker.
- A batch can be stored and the ack lost (we die in between, the device is offline): the device
  resends, ingest stores nothing new and acks again.
- Payloads can be anything. A bad one is logged and counted, PUBACKed (so the broker stops
  redelivering it) and never acked at the application level; the consumer never raises.
- A device removed from the registry may still hold a broker connection until Mosquitto reloads
  its password file: the consumer checks the registry at commit time and drops its messages.
"""
import logging
import threading

import paho.mqtt.client as mqtt

from tilltap_fw import protocol, protocol_check

log = logging.getLogger("tilltap.mqtt")


class Consumer:
    """A paho client feeding an ingest.Ingest. start() connects and runs paho's network thread.

    tls_ca: CA file to verify the broker with (enables TLS). client_id must be stable per
    process so that the persistent session survives restarts.
    """

    def __init__(self, ingest, host, port, username, password, client_id, tls_ca=None,
                 group=protocol.SHARE_GROUP):
        self._ingest = ingest
        self._group = group
        self.connected = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=False, protocol=mqtt.MQTTv311)
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
        c.on_disconnect = self._on_disconnect
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

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("broker refused the consumer: %s", reason_code)
            return
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
            # refused records are final for the device, so they are answered even when none
            # of the batch is acked
            if kind == "receipts" and (result.acked or result.rejected):
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
