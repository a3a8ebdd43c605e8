#!/bin/bash
# Runs once inside a container from the project image to make the lab image: Apache with CGI and the lab
# site, fail2ban installed (the roles configure it). Needs the Debian mirror.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends apache2 fail2ban >/dev/null
a2enmod -q cgid
echo "ServerName webshield-lab" > /etc/apache2/conf-available/webshield-lab-servername.conf
a2enconf -q webshield-lab-servername
cp -r /tmp/site/html/. /var/www/html/
install -m 0755 /tmp/site/cgi-bin/jump2.cgi /usr/lib/cgi-bin/jump2.cgi
# The lab has no sshd and no auth.log: Debian's stock sshd jail would make fail2ban refuse to start.
printf '[sshd]\nenabled = false\n' > /etc/fail2ban/jail.d/defaults-debian.conf
install -m 0755 /tmp/replay.py /usr/local/bin/webshield-lab-replay
apache2ctl -t
# The apt lists stay: the roles install packages (ipset, netfilter-persistent) as on a real server.
rm -rf /tmp/site /tmp/replay.py
