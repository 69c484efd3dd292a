#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers on 127.0.0.1:5672: install it (Debian) and start
# it if needed. The tests need the real broker and fail, never skip, without it.
set -euo pipefail

port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

if port_open; then exit 0; fi
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  echo "installing rabbitmq-server ..."
  if [ "$(id -u)" -ne 0 ]; then echo "need root to apt-get install rabbitmq-server" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
fi
echo "starting rabbitmq-server ..."
rabbitmq-server -detached
for _ in $(seq 1 60); do
  if port_open; then echo "rabbitmq is up"; exit 0; fi
  sleep 1
done
echo "rabbitmq did not start within 60 s" >&2
exit 1
