#!/usr/bin/perl
# The program under test of the test-kinds catalogue (catalogue.toml): one
# mode per kind of test, upper-casing its sample. The tests make a broken
# build of it by setting $broken to 1, which breaks each mode its own way.
use strict;
use warnings;
use IO::Socket::INET;
use File::Basename;

my $broken = 0;
my ($mode, @args) = @ARGV;

sub upper {
    my $text = shift;
    $text =~ tr/a-z/A-Z/;
    $text =~ s/O/0/g if $broken;
    return $text;
}

sub slurp {
    my $file = shift;
    my $fh;
    if ($file eq '-') {
        $fh = \*STDIN;
    } else {
        open($fh, '<', $file) or die "cannot read $file: $!\n";
    }
    binmode $fh;
    local $/;
    return scalar <$fh>;
}

sub write_file {
    my ($name, $text) = @_;
    open(my $out, '>', $name) or die "cannot write $name: $!\n";
    print $out $text;
    close $out;
}

if ($mode eq 'files') {
    write_file("$args[1]/upper.txt", upper(slurp($args[0])));
} elsif ($mode eq 'stdout') {
    print upper(slurp('-'));
} elsif ($mode eq 'report') {
    my $text = slurp($args[0]);
    my @lines = split /\n/, $text;
    my @words = split ' ', $text;
    printf "lines: %d\nwords: %d\n", scalar(@lines), scalar(@words) + $broken;
} elsif ($mode eq 'null') {
    write_file('scratch.log', "whatever a null test writes is not looked at\n");
    exit($broken ? 1 : 0);
} elsif ($mode eq 'services' || $mode eq 'programs') {
    my $base = basename($args[0]);
    $base =~ s/\.[^.]*$//;
    my @lines = split /\n/, slurp($args[0]);
    for my $i (1 .. @lines) {
        my $n = ($broken && $i == 2) ? 3 : $i;
        my $name = $mode eq 'services' ? "${base}_$n.srt" : "${base}_p$n.ts";
        write_file($name, upper($lines[$i - 1]) . "\n");
    }
} elsif ($mode eq 'udp') {
    if ($broken) {
        print STDERR "this build cannot listen\n";
        exit 3;
    }
    my $socket = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => $args[0], Proto => 'udp'
    ) or die "cannot listen on UDP port $args[0]: $!\n";
    my ($all, $datagram) = ('', '');
    # The stream is over after a second of silence.
    local $SIG{ALRM} = sub { write_file('upper.txt', upper($all)); exit 0 };
    while (1) {
        alarm 1;
        $socket->recv($datagram, 65536);
        $all .= $datagram;
    }
} elsif ($mode eq 'tcp') {
    exit 0 if $broken;
    my $socket = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $args[0])
        or die "cannot connect to port $args[0]: $!\n";
    print $socket upper(slurp($args[1]));
    close $socket;
} else {
    die "unknown mode $mode\n";
}
