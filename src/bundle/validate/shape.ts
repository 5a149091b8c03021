// The validator combinators live in util/shape.ts (QMP replies use them too); re-exported for bundle readers.
export * from '../../util/shape';
