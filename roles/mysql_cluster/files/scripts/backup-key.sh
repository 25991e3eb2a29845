#!/usr/bin/env bash
# Encryption at rest of backups (mysql_cluster_backup_encryption_secret),
# sourced by backup.sh and restore.sh: openssl enc, AES-256-CTR with a key
# derived from the Secret's passphrase by PBKDF2 (a random salt per backup,
# in the file's "Salted__" header). Why a key of our own and not the S3
# server's: a PVC has no server-side encryption, and a key the backup
# server never sees keeps the backups unreadable to whoever holds them
# (README "Encryption"). The passphrase is read from its file by openssl
# (-pass file:), never from a command line or the environment.
KEY_FILE=${BACKUP_KEY_FILE:-/etc/stateful-mysql/backup-key/key}
# What the manifest records in "encryption"; restore.sh reads it back.
# shellcheck disable=SC2034  # used by backup.sh and restore.sh
ENCRYPTION_SCHEME="aes-256-ctr pbkdf2-sha256 200000"
KEY_CHECK_TEXT="stateful.mysql backup key check"

# key_mounted: whether this Job has a key (the Secret is mounted).
key_mounted() { [ -f "$KEY_FILE" ]; }

# check_key: the passphrase is one line of 32 or more printable characters
# (openssl's file: reads the first line only: a second line would be lost).
check_key() {
  local all length
  all=$(tr -d '\n' <"$KEY_FILE" | wc -c)
  length=$(head -n 1 "$KEY_FILE" | tr -d '\n' | wc -c)
  if [ "$all" -ne "$length" ] || [ "$length" -lt 32 ] || LC_ALL=C grep -q '[^[:print:]]' "$KEY_FILE"; then
    die "the key in the Secret of mysql_cluster_backup_encryption_secret is not one line of 32 or more printable characters: make it with openssl rand -base64 48"
  fi
}

# key_check ID: a value that names the key without revealing it: the check
# text encrypted under it with a salt taken from the backup id. The check
# Job of restore.yml computes the same in sh: keep the two equal.
key_check() {
  printf '%s' "$KEY_CHECK_TEXT" |
    openssl enc -e -aes-256-ctr -pbkdf2 -iter 200000 -md sha256 -S "$(printf '%s' "$1" | sha256sum | cut -c1-16)" \
      -pass "file:$KEY_FILE" | od -An -tx1 | tr -d ' \n'
}

encrypt() { openssl enc -e -aes-256-ctr -pbkdf2 -iter 200000 -md sha256 -salt -pass "file:$KEY_FILE"; }
decrypt() { openssl enc -d -aes-256-ctr -pbkdf2 -iter 200000 -md sha256 -pass "file:$KEY_FILE"; }
