#!/bin/sh
# The service's state lives in /srv/www/files (a volume the testbed moves with it): a
# 256 KB blob made by the first instance and kept by every later one that gets the volume.
set -e
/bin/busybox mkdir -p /srv/www/files
[ -s /srv/www/files/blob ] || /bin/busybox head -c 262144 /dev/urandom > /srv/www/files/blob
exec /bin/busybox httpd -f -p 8000 -h /srv/www
