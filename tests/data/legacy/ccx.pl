#!/usr/bin/perl
# A stand-in for CCExtractor with the command line the legacy import writes
# (commands/src/legacy.rs): [options] INPUT|- [-udp HOST:PORT] and one of
# -o PATH, --stdout, -out=report, -out=null, -708 -o PATH,
# -multiprogram -o PATH, -sendto HOST:PORT. It upper-cases its input;
# -fail makes it exit 10.
use strict;
use warnings;
use IO::Socket::INET;

my ($input, $out, $udp, $sendto, %flag);
while (@ARGV) {
    my $arg = shift @ARGV;
    if ($arg eq '-o') { $out = shift @ARGV }
    elsif ($arg eq '-udp') { $udp = shift @ARGV }
    elsif ($arg eq '-sendto') { $sendto = shift @ARGV }
    elsif ($arg =~ /^-./) { $flag{$arg} = 1 }
    else { $input = $arg }
}

my $text = '';
if (defined $udp) {
    my (undef, $port) = split /:/, $udp;
    my $socket = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'udp')
        or die "cannot listen on $udp: $!\n";
    my $datagram;
    eval {
        local $SIG{ALRM} = sub { die "silence\n" };
        while (1) { alarm 1; $socket->recv($datagram, 65536); $text .= $datagram }
    };
} else {
    my $fh;
    if ($input eq '-') { $fh = \*STDIN } else { open($fh, '<', $input) or die "cannot read $input: $!\n" }
    local $/;
    $text = <$fh>;
}
$text = uc $text;

sub write_file {
    my ($name, $content) = @_;
    open(my $fh, '>', $name) or die "cannot write $name: $!\n";
    print $fh $content;
    close $fh;
}

if ($flag{'-out=null'}) {
} elsif ($flag{'-out=report'}) {
    my @lines = split /\n/, $text;
    printf "ccx report: %d lines\n", scalar @lines;
} elsif ($flag{'--stdout'}) {
    print $text;
} elsif (defined $sendto) {
    my ($host, $port) = split /:/, $sendto;
    my $socket = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port)
        or die "cannot connect to $sendto: $!\n";
    print $socket $text;
    close $socket;
} elsif ($flag{'-708'} || $flag{'-multiprogram'}) {
    my ($stem, $ext) = $out =~ /^(.*?)(\.[^.\/]*)?$/;
    $ext //= '';
    my @lines = split /\n/, $text;
    for my $i (1 .. @lines) {
        my $name = $flag{'-708'} ? "${stem}_$i$ext" : "${stem}_p$i$ext";
        write_file($name, "$lines[$i - 1]\n");
    }
} else {
    write_file($out, $text);
}
exit($flag{'-fail'} ? 10 : 0);
