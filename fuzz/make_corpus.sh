#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets into DIR/x3p and DIR/manifest (nothing binary is
# kept in the repository): X3P archives made with zip, bare main.xml texts (fuzz_x3p wraps
# those in an archive itself) and ingest manifests.
set -euo pipefail
out=${1:?usage: make_corpus.sh DIR}
mkdir -p "$out/x3p" "$out/manifest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# main.xml with the given Z type, size, increments, feature type and extra Record3 text.
main_xml() { # type nx ny incx incy feature md5 [extra]
  cat <<XML
<?xml version="1.0" encoding="UTF-8"?>
<p:ISO5436_2 xmlns:p="http://www.opengps.eu/2008/ISO5436_2">
<Record1><Revision>ISO5436 - 2000</Revision><FeatureType>$6</FeatureType><Axes>
<CX><AxisType>I</AxisType><DataType>D</DataType><Increment>$4</Increment><Offset>0</Offset></CX>
<CY><AxisType>I</AxisType><DataType>D</DataType><Increment>$5</Increment><Offset>0</Offset></CY>
<CZ><AxisType>A</AxisType><DataType>$1</DataType><Increment>1</Increment><Offset>0</Offset></CZ>
</Axes></Record1>
<Record2><Date>2020-01-02T03:04:05</Date><Creator>seed</Creator><Instrument><Manufacturer>Acme</Manufacturer><Model>M1</Model><Serial>42</Serial><Version>1</Version></Instrument><CalibrationDate>2019-12-31T00:00:00</CalibrationDate><ProbingSystem><Type>NonContacting</Type><Identification>lens</Identification></ProbingSystem><Comment>seed</Comment></Record2>
<Record3><MatrixDimension><SizeX>$2</SizeX><SizeY>$3</SizeY><SizeZ>1</SizeZ></MatrixDimension>
<DataLink><PointDataLink>bindata/data.bin</PointDataLink><MD5ChecksumPointData>$7</MD5ChecksumPointData>${8:-}</DataLink></Record3>
<Record4><ChecksumFile>md5checksum.hex</ChecksumFile></Record4>
</p:ISO5436_2>
XML
}

# One archive: name type nx ny incx incy feature bytes-per-point [extra]
seed() {
  local name=$1 t=$2 nx=$3 ny=$4 ix=$5 iy=$6 ft=$7 bpp=$8 extra=${9:-}
  local d="$work/$name"
  mkdir -p "$d/bindata"
  head -c $((nx * ny * bpp)) /dev/urandom >"$d/bindata/data.bin"
  local md5
  md5=$(md5sum "$d/bindata/data.bin" | cut -d' ' -f1)
  main_xml "$t" "$nx" "$ny" "$ix" "$iy" "$ft" "$md5" "$extra" >"$d/main.xml"
  if [ -n "$extra" ]; then head -c $(((nx * ny + 7) / 8)) /dev/zero | tr '\0' '\377' >"$d/bindata/valid.bin"; fi
  (cd "$d" && md5sum main.xml | sed 's/  / */' >md5checksum.hex && zip -qr "$out/x3p/$name.x3p" main.xml bindata md5checksum.hex)
  cp "$d/main.xml" "$out/x3p/$name.main.xml"
}
seed d4x3 D 4 3 6.25e-06 6.25e-06 SUR 8
seed f16x16 F 16 16 1.5625e-06 1.5625e-06 SUR 4
seed i8x8 I 8 8 7.37 7.37 SUR 2
seed l8x4 L 8 4 3.125e-06 3.125e-06 SUR 4
seed valid4x3 D 4 3 6.25e-06 6.25e-06 SUR 8 "<ValidPointsLink>bindata/valid.bin</ValidPointsLink>"
seed prf D 4 1 6.25e-06 6.25e-06 PRF 8
seed mixed D 4 3 6.25 1.5625e-06 SUR 8

# Manifests: the columns ingest knows, quoting, comments, CRLF, a BOM.
cat >"$out/manifest/plain.csv" <<'CSV'
type,serial,make,model,calibre,case,item,agency,scans
firearm,SN1,Acme,M1,9mm,,,,a.x3p
evidence,,,,9mm,C1,1,PD,b.x3p
CSV
cat >"$out/manifest/quoted.csv" <<'CSV'
# a comment line
type,serial,make,model,calibre,scans
firearm,"SN, ""two""",Acme,"M
1",9mm,"lands/one,lands/two"
CSV
printf 'type,serial,scans\r\nfirearm,SN2,a.x3p\r\n\r\n' >"$out/manifest/crlf.csv"
printf '\xef\xbb\xbftype,serial,scans\nfirearm,SN3,a.x3p\n' >"$out/manifest/bom.csv"
printf 'type,serial,scans\nfirearm,"unterminated,a.x3p\n' >"$out/manifest/open_quote.csv"
echo "seed corpus: $(ls "$out/x3p" | wc -l) X3P inputs, $(ls "$out/manifest" | wc -l) manifests in $out"
