#!/usr/bin/env bash
# xbstream-pick.sh DIR NAME...: read an xbstream (mariadb-backup --stream)
# from stdin to its end and write only the files NAME... of it into DIR.
# backup.sh needs the backup's binlog position and checkpoints out of the
# stream it stores; `mbstream -x` writes every file of it, and takes no list.
# The format: chunks of "XBSTCK01", flags (1 byte), type (1: P payload, E end
# of file), path length (4, little-endian), path; a payload chunk then has
# its length and offset (8 each) and a CRC32 (4) before its bytes. Anything
# else stops it with an error (the backup then fails, nothing is kept).
exec perl -e '
use strict;
use warnings;
my ($dir, @names) = @ARGV;
my %want = map { $_ => 1 } @names;
binmode STDIN;
sub take {
    my ($n, $end_ok) = @_;
    my $buf = "";
    while (length($buf) < $n) {
        my $r = read(STDIN, $buf, $n - length($buf), length($buf));
        die "xbstream-pick: cannot read the stream: $!\n" unless defined $r;
        return undef if $r == 0 && length($buf) == 0 && $end_ok;
        die "xbstream-pick: the stream ends inside a chunk\n" if $r == 0;
    }
    return $buf;
}
sub u64 { my ($lo, $hi) = unpack("VV", $_[0]); return $lo + $hi * 4294967296; }
while (defined(my $magic = take(8, 1))) {
    die "xbstream-pick: not an xbstream chunk\n" unless $magic eq "XBSTCK01";
    my (undef, $type) = unpack("Ca", take(2));
    my $path_len = unpack("V", take(4));
    my $path = $path_len ? take($path_len) : "";
    next if $type eq "E";
    die "xbstream-pick: unknown chunk type \"$type\" for $path\n" unless $type eq "P";
    my $len = u64(take(8));
    my $offset = u64(take(8));
    take(4);
    if ($want{$path}) {
        die "xbstream-pick: unexpected path $path\n" if $path =~ m{/};
        my $file = "$dir/$path";
        open(my $out, (-e $file ? "+<" : ">"), $file) or die "xbstream-pick: cannot write $file: $!\n";
        binmode $out;
        seek($out, $offset, 0) or die "xbstream-pick: cannot seek in $file: $!\n";
        print $out take($len) if $len;
        close($out) or die "xbstream-pick: cannot write $file: $!\n";
    } else {
        while ($len > 0) {
            my $n = $len > 1048576 ? 1048576 : $len;
            take($n);
            $len -= $n;
        }
    }
}
' "$@"
