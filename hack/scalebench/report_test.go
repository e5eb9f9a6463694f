package main

import (
	"slices"
	"testing"
)

func TestReadyIsTheMedianOfTheRunsWhateverTheirOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		runs []float64
		want float64
	}{
		{"one run", []float64{2.5}, 2.5},
		{"odd number, unsorted", []float64{3, 1, 2}, 2},
		{"even number: the mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"an outlier does not move it", []float64{1.5, 30, 1.6, 1.4, 1.7}, 1.6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.runs)
			if got := median(in); got != tc.want {
				t.Errorf("median(%v) = %v, want %v", tc.runs, got, tc.want)
			}
			if !slices.Equal(in, tc.runs) {
				t.Errorf("median reordered the runs: %v, were %v", in, tc.runs)
			}
		})
	}
}
