#!/usr/bin/perl
# text-tools: slugify, word counts, grapheme-aware reversal and case conversion.
#
# A long-running process that speaks the marketplace runner protocol itself: one JSON request per
# line on stdin, exactly one JSON response per line on stdout, flushed at once. Core Perl only
# (JSON::PP, MIME::Base64, Unicode::Normalize).
use strict;
use warnings;
use JSON::PP ();
use Unicode::Normalize qw(NFKD NFC);

my $json = JSON::PP->new->utf8->canonical;
my $MAX_CHARS = 1_000_000;
my %OPS = (
    slugify   => \&slugify_op,
    wordcount => \&wordcount_op,
    reverse   => \&reverse_op,
    case      => \&case_op,
);
# letters that Unicode decomposition does not reduce to ASCII
my %TRANSLIT = (
    "\x{df}" => 'ss', "\x{e6}" => 'ae', "\x{c6}" => 'AE', "\x{f8}" => 'o', "\x{d8}" => 'O',
    "\x{153}" => 'oe', "\x{152}" => 'OE', "\x{142}" => 'l', "\x{141}" => 'L', "\x{111}" => 'd',
    "\x{110}" => 'D', "\x{fe}" => 'th', "\x{de}" => 'Th', "\x{f0}" => 'd', "\x{d0}" => 'D',
    "\x{131}" => 'i', "\x{2018}" => "'", "\x{2019}" => "'", "\x{201c}" => '"', "\x{201d}" => '"',
    "&" => ' and ',
);

binmode STDIN,  ':raw';
binmode STDOUT, ':raw';
$| = 1;

sub fail { die { message => $_[0] } }

sub to_ascii {
    my ($text) = @_;
    my $class = join '', map { quotemeta } keys %TRANSLIT;
    $text =~ s/([$class])/$TRANSLIT{$1}/g;
    $text = NFKD($text);
    $text =~ s/\p{Mn}//g;    # drop combining marks: e + acute -> e
    return $text;
}

sub slugify {
    my ($text, $separator, $ascii, $max_length) = @_;
    $text = $ascii ? to_ascii($text) : NFC($text);
    $text = lc $text;
    $text =~ s/'//g;    # "don't" -> "dont"
    my $word = $ascii ? qr/[a-z0-9]+/ : qr/[\p{L}\p{N}]+/;
    my @parts = $text =~ /($word)/g;
    my $slug = join $separator, @parts;
    if ($max_length && length($slug) > $max_length) {
        $slug = substr($slug, 0, $max_length);
        # cut back to a whole word when there is a separator to cut at
        $slug =~ s/\Q$separator\E(?:(?!\Q$separator\E).)*\z// if length $separator && index($slug, $separator) >= 0;
    }
    return $slug;
}

sub text_arg {
    my ($request) = @_;
    my $text = $request->{text};
    fail('"text" must be a string') if !defined $text || ref $text;
    fail("\"text\" is longer than $MAX_CHARS characters") if length $text > $MAX_CHARS;
    return $text;
}

sub slugify_op {
    my ($request) = @_;
    my $text = text_arg($request);
    my $separator = $request->{separator} // '-';
    fail('"separator" must be one of "-", "_", "." or ""') unless !ref $separator && $separator =~ /\A[-_.]?\z/;
    my $ascii = exists $request->{ascii} ? $request->{ascii} : 1;
    my $max_length = $request->{max_length} // 0;
    fail('"max_length" must be a whole number from 0 (no limit) to 1000')
        unless !ref $max_length && $max_length =~ /\A\d+\z/ && $max_length <= 1000;
    my $slug = slugify($text, $separator, $ascii, $max_length);
    fail('nothing left to make a slug from (try "ascii": false for non-Latin scripts)') if $slug eq '';
    return { slug => $slug };
}

sub wordcount_op {
    my ($request) = @_;
    my $text = text_arg($request);
    my $top = $request->{top} // 10;
    fail('"top" must be a whole number from 0 to 100') unless !ref $top && $top =~ /\A\d+\z/ && $top <= 100;
    my @words = $text =~ /([\p{L}\p{N}]+(?:['\x{2019}][\p{L}]+)*)/g;
    my %count;
    $count{ lc $_ }++ for @words;
    my @ranked = sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count;
    my @lines = split /\r?\n/, $text, -1;
    pop @lines if @lines && $lines[-1] eq '';    # a final newline ends the last line
    my $bytes = do { my $copy = $text; utf8::encode($copy); length $copy };
    my @graphemes = $text =~ /(\X)/g;
    return {
        words      => scalar @words,
        unique     => scalar keys %count,
        lines      => scalar @lines,
        characters => scalar @graphemes,
        bytes      => $bytes,
        top        => [ map { { word => $_, count => $count{$_} } } @ranked[ 0 .. ($top < @ranked ? $top : scalar @ranked) - 1 ] ],
    };
}

sub reverse_op {
    my ($request) = @_;
    my $text = text_arg($request);
    my $by = $request->{by} // 'characters';
    if ($by eq 'characters') {
        my @graphemes = $text =~ /(\X)/g;    # keep "e" + combining accent, emoji sequences together
        return { reversed => join '', reverse @graphemes };
    }
    if ($by eq 'words') {
        return { reversed => join ' ', reverse split ' ', $text };
    }
    fail('"by" must be "characters" or "words"');
}

sub case_op {
    my ($request) = @_;
    my $text = text_arg($request);
    my $to = $request->{to} // '';
    my @words = map { lc } (NFC($text) =~ /([\p{Lu}]?[\p{Ll}\p{N}]+|[\p{Lu}\p{N}]+(?![\p{Ll}])|\p{L}+)/g);
    my %styles = (
        upper    => sub { uc NFC($text) },
        lower    => sub { lc NFC($text) },
        title    => sub { join ' ', map { ucfirst } @words },
        sentence => sub { ucfirst join ' ', @words },
        snake    => sub { join '_', @words },
        kebab    => sub { join '-', @words },
        camel    => sub { my ($first, @rest) = @words; join '', ($first // ''), map { ucfirst } @rest },
        pascal   => sub { join '', map { ucfirst } @words },
        constant => sub { uc join '_', @words },
    );
    fail('"to" must be one of: ' . join(', ', sort keys %styles)) unless $styles{$to};
    return { text => $styles{$to}->() };
}

sub handle {
    my ($message) = @_;
    my $type = $message->{content_type} // 'json';
    my $data = $message->{data};
    if ($type eq 'text') {    # a plain text body is slugified, and the slug comes back as text
        fail('the text body must be a string') if ref $data;
        return (slugify_op({ text => $data })->{slug}, 'text');
    }
    fail('binary input is not supported: send JSON or text') if $type eq 'binary';
    fail('expected a JSON object like {"op": "slugify", "text": "Hello World"}') unless ref $data eq 'HASH';
    my $op = $data->{op} // 'slugify';
    fail('unknown "op"; choose one of: ' . join(', ', sort keys %OPS)) unless !ref $op && $OPS{$op};
    return ($OPS{$op}->($data), 'json');
}

while (my $line = <STDIN>) {
    next if $line =~ /\A\s*\z/;
    my ($message, $response);
    $message = eval { $json->decode($line) };
    if (!$message || ref $message ne 'HASH') {
        $response = { id => undef, error => { message => 'the request line is not a JSON object', error_type => 'AlgorithmError' } };
    }
    else {
        my ($result, $type) = eval { handle($message) };
        if (my $error = $@) {
            my $text = ref $error eq 'HASH' ? $error->{message} : "internal error: $error";
            $text =~ s/\s+\z//;
            print STDERR "request $message->{id} failed: $text\n" unless ref $error eq 'HASH';
            $response = { id => $message->{id}, error => { message => $text, error_type => 'AlgorithmError' } };
        }
        else {
            $response = { id => $message->{id}, result => $result, content_type => $type };
        }
    }
    print $json->encode($response), "\n";
}
